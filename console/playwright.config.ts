import { defineConfig } from "@playwright/test";

// Run by tests/console/test_console.py, which starts the service, the identity provider and
// the built console, and says where in CONSOLE_URL, API_URL and the rest. The browser is the
// machine's Chromium: nothing is downloaded.
export default defineConfig({
  testDir: "tests",
  fullyParallel: false,
  workers: 1,
  retries: 0,
  timeout: 30_000,
  expect: { timeout: 5_000 },
  reporter: [["list"]],
  outputDir: `${process.env.CONSOLE_ARTIFACTS ?? "test-results"}/playwright`,
  use: {
    baseURL: process.env.CONSOLE_URL,
    locale: "vi-VN",
    viewport: { width: 1440, height: 900 },
    screenshot: "only-on-failure",
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: ["--no-sandbox", "--disable-dev-shm-usage"],
    },
  },
});
