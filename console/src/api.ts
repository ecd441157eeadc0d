// The service's API through the client generated from its OpenAPI document
// (src/client/schema.d.ts, `npm run generate`): every request carries the signed-in person's
// token and asks for answers in the console's language.
import createClient from "openapi-fetch";
import { auth } from "./auth";
import type { components, paths } from "./client/schema";
import { currentLanguage } from "./i18n";

export type User = components["schemas"]["UserOut"];
export type UserPage = components["schemas"]["Page_UserOut_"];
export type DeviceSummary = components["schemas"]["DeviceSummary"];
export type DeviceKind = components["schemas"]["DeviceKind"];
export type DeviceConfig = components["schemas"]["DeviceConfig"];
export type UserSort = components["schemas"]["UserSort"];
export type Problem = components["schemas"]["Problem"];
export type Role = "admin" | "operator" | "viewer";

export const USER_SORTS: UserSort[] = [
  "given_name",
  "-given_name",
  "display_name",
  "-display_name",
  "created_at",
  "-created_at",
];

/** A refusal from the service: its status and problem document (RFC 9457). */
export class ApiProblem extends Error {
  constructor(
    readonly status: number,
    readonly problem: Partial<Problem>,
  ) {
    super(problem.detail ?? problem.title ?? `HTTP ${status}`);
  }

  /** The message the service wrote for `field` (e.g. `body.number`), if it named it. */
  fieldMessage(field: string): string | undefined {
    return this.problem.errors?.find((error) => error.field === field)?.message;
  }

  /** What to tell a person: the first field's message, else the problem's detail. */
  get sentence(): string {
    return (
      this.problem.errors?.[0]?.message ?? this.problem.detail ?? this.problem.title ?? this.message
    );
  }
}

export let apiUrl = "";
export let api = createClient<paths>({ baseUrl: "" });

export function startApi(baseUrl: string) {
  apiUrl = baseUrl;
  api = createClient<paths>({ baseUrl });
  api.use({
    onRequest({ request }) {
      const token = auth.token();
      if (token) request.headers.set("Authorization", `Bearer ${token}`);
      request.headers.set("Accept-Language", currentLanguage());
      return request;
    },
  });
}

/** The answer's data, or an ApiProblem for a refusal. */
export function unwrap<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.error !== undefined || !result.response.ok) {
    throw new ApiProblem(result.response.status, (result.error ?? {}) as Partial<Problem>);
  }
  return result.data as T;
}

export function ifMatch(version: number) {
  return `"${version}"`;
}

/**
 * What the signed-in caller may do, as the service decides it: the audit trail answers only
 * admins, a device's provisioning only admins and operators (a made-up device: 404 for them,
 * 403 for a viewer, and nothing is read or written).
 */
export async function probeRole(): Promise<Role> {
  const audit = await api.GET("/v1/audit-events", { params: { query: { limit: 1 } } });
  if (audit.response.ok) return "admin";
  const provisioning = await api.GET("/v1/devices/{device_id}/provisioning", {
    params: { path: { device_id: "00000000-0000-0000-0000-000000000000" } },
  });
  return provisioning.response.status === 403 ? "viewer" : "operator";
}
