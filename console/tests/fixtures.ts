// What every step shares: an operator signed in once (through the identity provider's own
// pages), a check that no page logged an error, axe-core on a part of the page, screenshots.
import AxeBuilder from "@axe-core/playwright";
import {
  type BrowserContext,
  test as base,
  expect,
  type Locator,
  type Page,
} from "@playwright/test";

export const env = {
  consoleUrl: process.env.CONSOLE_URL ?? "",
  devConsoleUrl: process.env.DEV_CONSOLE_URL ?? "",
  apiUrl: process.env.API_URL ?? "",
  adminKey: process.env.ADMIN_KEY ?? "",
  operator: process.env.OPERATOR_ACCOUNT ?? "",
  operatorName: process.env.OPERATOR_NAME ?? "",
  viewer: process.env.VIEWER_ACCOUNT ?? "",
  artifacts: process.env.CONSOLE_ARTIFACTS ?? "test-results",
};

// A refusal the test asks for (a 4xx) is logged by Chromium itself; anything else is the app's.
const BROWSER_NETWORK_LOG = /^Failed to load resource: the server responded with a status of 4\d\d/;

export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error" && !BROWSER_NETWORK_LOG.test(message.text()))
      errors.push(message.text());
  });
  page.on("pageerror", (error) => errors.push(error.message));
  return errors;
}

/** Signs in through the provider's pages (its sign-in form, then its consent form unless it
 * remembers the consent, or neither while its session lasts); answers when the last click
 * happened, in ms since the epoch. */
export async function signIn(page: Page, account: string): Promise<number> {
  const login = page.getByLabel("Account");
  const allow = page.getByRole("button", { name: "Allow" });
  const signedIn = page.getByRole("button", { name: "Đăng xuất" });
  let last = Date.now();
  await page.getByRole("button", { name: "Đăng nhập" }).click();
  for (;;) {
    const step = await Promise.race([
      login.waitFor().then(() => "login" as const),
      allow.waitFor().then(() => "consent" as const),
      signedIn.waitFor().then(() => "done" as const),
    ]);
    if (step === "done") return last;
    last = Date.now();
    if (step === "login") {
      await login.fill(account);
      await page.getByRole("button", { name: "Sign in" }).click();
    } else {
      await allow.click();
    }
    await page.waitForLoadState();
  }
}

export async function noSeriousViolations(page: Page, selector: string) {
  const results = await new AxeBuilder({ page }).include(selector).analyze();
  const serious = results.violations.filter(
    (v) => v.impact === "serious" || v.impact === "critical",
  );
  expect(
    serious.map(
      (v) =>
        `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`,
    ),
  ).toEqual([]);
}

export async function screenshot(target: Page | Locator, name: string) {
  await target.screenshot({
    path: `${env.artifacts}/screenshots/${name}.png`,
    animations: "disabled",
  });
}

export function row(page: Page, name: string): Locator {
  return page
    .getByTestId("users")
    .getByRole("row")
    .filter({ has: page.getByText(name, { exact: true }) });
}

export async function api(path: string, init: RequestInit = {}) {
  const response = await fetch(`${env.apiUrl}${path}`, {
    ...init,
    headers: {
      Authorization: `Bearer ${env.adminKey}`,
      "Content-Type": "application/json",
      ...init.headers,
    },
  });
  expect(response.ok, `${init.method ?? "GET"} ${path}: ${response.status}`).toBeTruthy();
  return response.json();
}

interface Operator {
  context: BrowserContext;
  page: Page;
  errors: string[];
  /** From the last click of the sign-in to the first page of 50 agents drawn. */
  firstPageMs: number;
  /** The access token the sign-in gave. */
  firstToken: string | null;
}

/** The access token the page holds (oidc-client-ts keeps it in sessionStorage). */
export async function accessToken(page: Page): Promise<string | null> {
  return page.evaluate(() => {
    const key = Object.keys(sessionStorage).find((name) => name.startsWith("oidc.user:"));
    return key ? (JSON.parse(sessionStorage.getItem(key) ?? "{}").access_token ?? null) : null;
  });
}

export const test = base.extend<{ errors: string[] }, { operator: Operator }>({
  operator: [
    async ({ browser }, use) => {
      const context = await browser.newContext({ baseURL: env.consoleUrl, locale: "vi-VN" });
      const page = await context.newPage();
      const errors = watchErrors(page);
      await page.goto("/config/antring/users");
      const clicked = await signIn(page, env.operator);
      await expect(page.getByTestId("users").locator("tbody tr")).toHaveCount(50, {
        timeout: 10_000,
      });
      const firstPageMs = Date.now() - clicked;
      await use({ context, page, errors, firstPageMs, firstToken: await accessToken(page) });
      await context.close();
    },
    { scope: "worker" },
  ],
  // Every step ends with no error logged by the operator's page.
  errors: [
    async ({ operator }, use) => {
      operator.errors.length = 0;
      await use(operator.errors);
      expect(operator.errors, "errors logged by the page").toEqual([]);
    },
    { auto: true },
  ],
});

export { expect };
