// What a browser SPA writes against the types openapi-typescript generates from the served
// document ("antring-api", made by test_typescript_client.py): list, create and update users.
// It is only compiled (tsc --strict --noEmit); each @ts-expect-error is a rule of the contract
// that the types must keep.
import type { components, operations } from "antring-api";

type Problem = components["schemas"]["Problem"];
type ListUsersQuery = NonNullable<operations["list_users"]["parameters"]["query"]>;
type UserPage = operations["list_users"]["responses"][200]["content"]["application/json"];
type UserCreate = operations["create_user"]["requestBody"]["content"]["application/json"];
type CreatedUser = operations["create_user"]["responses"][201]["content"]["application/json"];
type UserUpdate = operations["update_user"]["requestBody"]["content"]["application/json"];
type UpdatedUser = operations["update_user"]["responses"][200]["content"]["application/json"];
type UpdateHeaders = NonNullable<operations["update_user"]["parameters"]["header"]>;

export interface Api {
  baseUrl: string;
  key: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Problem,
  ) {
    super(`${problem.status} ${problem.title}`);
  }
}

async function send<T>(
  api: Api,
  method: "GET" | "POST" | "PATCH",
  path: string,
  options: { body?: unknown; headers?: Record<string, string> } = {},
): Promise<{ data: T; etag: string | null }> {
  const response = await fetch(`${api.baseUrl}${path}`, {
    method,
    headers: {
      Authorization: `Bearer ${api.key}`,
      ...(options.body === undefined ? {} : { "Content-Type": "application/json" }),
      ...options.headers,
    },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  if (!response.ok) {
    throw new ApiError(response.status, (await response.json()) as Problem);
  }
  return { data: (await response.json()) as T, etag: response.headers.get("ETag") };
}

export async function listUsers(api: Api, query: ListUsersQuery = {}): Promise<UserPage> {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null) params.set(name, String(value));
  }
  return (await send<UserPage>(api, "GET", `/v1/users?${params.toString()}`)).data;
}

export async function createUser(api: Api, user: UserCreate): Promise<CreatedUser> {
  return (await send<CreatedUser>(api, "POST", "/v1/users", { body: user })).data;
}

export async function updateUser(
  api: Api,
  userId: string,
  change: UserUpdate,
  etag?: string,
): Promise<{ user: UpdatedUser; etag: string | null }> {
  const headers: UpdateHeaders = etag === undefined ? {} : { "if-match": etag };
  const { data, etag: next } = await send<UpdatedUser>(
    api,
    "PATCH",
    `/v1/users/${encodeURIComponent(userId)}`,
    { body: change, headers: headers as Record<string, string> },
  );
  return { user: data, etag: next };
}

export async function onboardAgent(api: Api): Promise<string[]> {
  const page = await listUsers(api, { search: "lan", sort: "-created_at", limit: 20 });
  const names: string[] = page.items.map((user) => user.display_name);
  const pages: number = Math.ceil(page.total / page.limit);

  // Only the name is required: the switches and the quota have defaults.
  const created = await createUser(api, { display_name: "Nguyễn Thị Lan" });
  const device = created.devices[0];
  const username: string | undefined = device?.name;
  const firstExtension: string | undefined = created.extensions[0];

  const { user, etag } = await updateUser(api, created.id, { limit_minutes: 600 });
  const limit: number | null = user.limit_minutes;
  const used: number = user.minutes.used_minutes;
  await updateUser(api, user.id, { outbound_allowed: false, limit_minutes: null }, etag ?? "*");

  return [...names, String(pages), username ?? "", firstExtension ?? "", String(limit), String(used)];
}

export function contractRules(created: CreatedUser): void {
  // @ts-expect-error a user needs a display name
  const nameless: UserCreate = { email: "lan@acme.vn" };
  // @ts-expect-error the list sorts by its known keys only
  const badSort: ListUsersQuery = { sort: "email" };
  // @ts-expect-error extensions are strings: "007" and "07" are different numbers
  const extension: number = created.extensions[0];
  // @ts-expect-error the id is a string (a UUID), never a number
  const id: number = created.id;
  // @ts-expect-error a switch is a JSON boolean, never a string
  const change: UserUpdate = { outbound_allowed: "yes" };
  void [nameless, badSort, extension, id, change];
}
