// The operators' guide (../shared/seed/antring-sip-accounts.vi.txt), one test per step, in its
// order and words. The step where a phone registers and its dot turns green needs the reference
// SIP edge: tests/console/test_console.py drives it with Kamailio and sipp, after these.
import {
  accessToken,
  api,
  env,
  expect,
  noSeriousViolations,
  row,
  screenshot,
  signIn,
  test,
  watchErrors,
} from "./fixtures";

test.describe.configure({ mode: "serial" });

const AN = "Nguyễn Văn An";

test("Đăng nhập với vai trò vận hành (sign in as an operator)", async ({ operator }) => {
  const { page } = operator;
  await expect(page.getByText(`Đã đăng nhập: ${env.operatorName}`)).toBeVisible();
  await expect(page.locator("[data-role]")).toHaveText("Vận hành");
  // The token lives in this tab's sessionStorage, never in localStorage.
  const stored = await page.evaluate(() => ({
    local: Object.keys(localStorage),
    session: Object.keys(sessionStorage),
  }));
  expect(stored.local.filter((key) => key.startsWith("oidc"))).toEqual([]);
  expect(stored.session.some((key) => key.startsWith("oidc.user:"))).toBeTruthy();
  console.log(`first page of 50 agents drawn ${operator.firstPageMs} ms after the sign-in`);
});

test("Menu chính → Cấu hình → AntRing → Người dùng: the table of users", async ({ operator }) => {
  const { page } = operator;
  await page.goto("/");
  await page.getByRole("button", { name: "Menu chính" }).click();
  await page.getByRole("button", { name: "Cấu hình" }).click();
  await page.getByRole("button", { name: "AntRing" }).click();
  await page.getByRole("link", { name: "Người dùng" }).click();
  await expect(page).toHaveURL(/\/config\/antring\/users$/);
  const table = page.getByTestId("users");
  await expect(table.getByRole("columnheader")).toHaveText([
    "Người dùng",
    "Thiết bị",
    "Số nội bộ",
    "Số phút đã gọi/Số phút được gọi",
    "Cho phép gọi ra",
    "Tự động trả lời",
  ]);
  await expect(table.locator("tbody tr")).toHaveCount(50);
  await expect(page.getByText("1–50 trên 60 người dùng")).toBeVisible();
  // Every agent has the SIP account the system made, unlimited minutes, outbound on, auto off.
  const an = row(page, AN);
  await expect(an.getByRole("img", { name: "Chưa kết nối" })).toHaveCount(1);
  await expect(an.getByTestId("minutes")).toHaveText("0/Không giới hạn");
  await expect(an.getByRole("switch", { name: `Cho phép gọi ra: ${AN}` })).toBeChecked();
  await expect(an.getByRole("switch", { name: `Tự động trả lời: ${AN}` })).not.toBeChecked();
  // Vietnamese order by given name: Dũng before Đức.
  const names = await table.locator("tbody tr td:first-child p:first-child").allTextContents();
  expect(names.indexOf("Trần Văn Dũng")).toBeLessThan(names.indexOf("Phạm Minh Đức"));
  await screenshot(page, "01-users-table");
  await page.getByRole("button", { name: "Trang 2" }).click();
  await expect(table.locator("tbody tr")).toHaveCount(10);
  await expect(page.getByText("51–60 trên 60 người dùng")).toBeVisible();
  // axe-core reads the table on its page of 10 rows: the same columns and controls as a page
  // of 50, in a fifth of the time.
  await noSeriousViolations(page, "[data-testid=users]");
  await page.getByRole("button", { name: "Trang 1" }).click();
  await expect(table.locator("tbody tr")).toHaveCount(50);
});

test("Tài khoản SIP: nhấn vào tên thiết bị để xem thông tin cấu hình (web and IP phone)", async ({
  operator,
}) => {
  const { page } = operator;
  const [user] = (
    await api(`/v1/users?search=${encodeURIComponent("nguyen van an")}`)
  ).items.filter((u: { display_name: string }) => u.display_name === AN);
  const device = user.devices[0];
  await row(page, AN).getByRole("button", { name: device.name, exact: true }).click();
  const dialog = page.getByRole("dialog", { name: `Cấu hình tài khoản SIP ${device.name}` });
  const web = dialog.getByRole("tabpanel", { name: "Web" });
  await expect(dialog.getByRole("tab", { name: "Web" })).toHaveAttribute("aria-selected", "true");
  await expect(web.getByRole("rowheader", { name: "SIP URI" })).toBeVisible();
  await expect(web.getByText(`sip:${device.name}@hanoi.sip.test`)).toBeVisible();
  await expect(web.getByText("Đã ẩn")).toBeVisible();
  await noSeriousViolations(page, "[role=dialog]");
  await screenshot(dialog, "02-device-settings-web");
  await dialog.getByRole("tab", { name: "IP phone (thiết bị ngoài)" }).click();
  const ipPhone = dialog.getByRole("tabpanel", { name: "IP phone (thiết bị ngoài)" });
  await expect(ipPhone.getByRole("rowheader", { name: "Registrar" })).toBeVisible();
  await expect(ipPhone.getByText("Đã ẩn")).toBeVisible();
  await screenshot(dialog, "03-device-settings-ip-phone");
  // The password only after "show"; the reveal is on the audit trail under the operator's name.
  const revealed = async () =>
    (await api(`/v1/audit-events?resource_id=${device.id}`)).items.filter(
      (entry: { action: string }) => entry.action === "device.password_revealed",
    );
  const before = (await revealed()).length;
  await ipPhone.getByRole("button", { name: "Hiện mật khẩu" }).click();
  await expect(ipPhone.getByTestId("password")).toHaveText(/^\S{12,}$/);
  const reveals = await revealed();
  expect(reveals).toHaveLength(before + 1);
  expect(JSON.stringify(reveals[0].actor)).toContain(env.operatorName);
  await dialog.getByRole("button", { name: "Đóng", exact: true }).click();
  await expect(dialog).toBeHidden();
});

test("Tài khoản SIP: “Thêm mới” với tên thiết bị và mật khẩu, rồi thấy nó ở cột “Thiết bị”", async ({
  operator,
}) => {
  const { page } = operator;
  const an = row(page, AN);
  await an.getByRole("button", { name: "Thêm mới" }).click();
  const dialog = page.getByRole("dialog", { name: `Thêm mới tài khoản SIP cho ${AN}` });
  await dialog.getByLabel("Tên thiết bị").fill("an.softphone");
  await dialog.getByRole("radio", { name: "Softphone" }).check();
  // A password the service refuses is answered next to the field, in Vietnamese.
  await dialog.getByLabel("Mật khẩu").fill("an.softphone42");
  await dialog.getByRole("button", { name: "Thêm mới" }).click();
  await expect(dialog.getByText("Mật khẩu không được chứa tên thiết bị.")).toBeVisible();
  await noSeriousViolations(page, "[role=dialog]");
  await screenshot(dialog, "04-add-device-refused");
  await dialog.getByLabel("Mật khẩu").fill("");
  await dialog.getByRole("button", { name: "Thêm mới" }).click();
  // Generated, and shown this once.
  await expect(dialog.getByText("Đã tạo tài khoản SIP an.softphone")).toBeVisible();
  await expect(dialog.getByTestId("new-password")).toHaveText(/^\S{20}$/);
  await screenshot(dialog, "05-add-device-done");
  await dialog.getByRole("button", { name: "Đóng", exact: true }).click();
  await expect(an.getByRole("button", { name: "an.softphone", exact: true })).toBeVisible();
});

test("Tài khoản SIP: nhấn dấu (X) bên cạnh để xóa", async ({ operator }) => {
  const { page } = operator;
  const an = row(page, AN);
  await an.getByRole("button", { name: "Xóa tài khoản SIP an.softphone" }).click();
  const dialog = page.getByRole("dialog", { name: "Xóa tài khoản SIP" });
  await expect(dialog).toContainText(`Xóa tài khoản SIP an.softphone của ${AN}?`);
  await noSeriousViolations(page, "[role=dialog]");
  await screenshot(dialog, "06-delete-device");
  await dialog.getByRole("button", { name: "Xóa" }).click();
  await expect(dialog).toBeHidden();
  await expect(an.getByRole("button", { name: "an.softphone", exact: true })).toHaveCount(0);
  await expect(an.locator("[data-device]")).toHaveCount(1);
});

test("Thêm số nội bộ: nhập số nhánh (2-4 số), nhấn (+); (x) để xóa", async ({ operator }) => {
  const { page } = operator;
  const an = row(page, AN);
  const field = an.getByRole("combobox", { name: `Số nhánh cho ${AN}`, exact: true });
  const plus = an.getByRole("button", { name: `Thêm số nội bộ cho ${AN}` });
  // The next free numbers are offered while the field has focus.
  await field.focus();
  await expect(an.locator("datalist option")).toHaveCount(5);
  for (const [number, message] of [
    ["1", "Hãy nhập từ 2 đến 4 chữ số."],
    ["12345", "Hãy nhập từ 2 đến 4 chữ số."],
    ["113", "Số nội bộ 113 có thể bị nhầm với số khẩn cấp (113, 114 hoặc 115)."],
  ]) {
    await field.fill(number as string);
    await plus.click();
    await expect(an.getByText(message as string)).toBeVisible();
  }
  await screenshot(an, "07-extension-refused");
  for (const number of ["21", "2301"]) {
    await field.fill(number);
    await field.press("Enter");
    await expect(an.getByText(number, { exact: true })).toBeVisible();
    await expect(field).toHaveValue("");
  }
  await an.getByRole("button", { name: "Xóa số nội bộ 21" }).click();
  await expect(an.getByText("21", { exact: true })).toHaveCount(0);
  await expect(an.getByText("2301", { exact: true })).toBeVisible();
});

test("Cấp số phút gọi ra: bỏ chọn “Không giới hạn”, điền 120 phút, “Đồng ý”; rồi không giới hạn", async ({
  operator,
}) => {
  const { page } = operator;
  const an = row(page, AN);
  await an.getByTestId("minutes").click();
  const dialog = page.getByRole("dialog", { name: "Cấp số phút gọi ra" });
  const unlimited = dialog.getByRole("checkbox", { name: "Không giới hạn" });
  await expect(unlimited).toBeChecked();
  await expect(dialog.getByLabel("Số phút được gọi")).toBeDisabled();
  await noSeriousViolations(page, "[role=dialog]");
  await unlimited.uncheck();
  await dialog.getByLabel("Số phút được gọi").fill("120");
  await screenshot(dialog, "08-minutes");
  await dialog.getByRole("button", { name: "Đồng ý" }).click();
  await expect(dialog).toBeHidden();
  await expect(an.getByTestId("minutes")).toHaveText("0/120");
  await an.getByTestId("minutes").click();
  await expect(unlimited).not.toBeChecked();
  await expect(dialog.getByLabel("Số phút được gọi")).toHaveValue("120");
  await unlimited.check();
  await dialog.getByRole("button", { name: "Đồng ý" }).click();
  await expect(an.getByTestId("minutes")).toHaveText("0/Không giới hạn");
});

test("Cấp quyền gọi ra và Trả lời tự động: chuyển Disable/Enable", async ({ operator }) => {
  const { page } = operator;
  const an = row(page, AN);
  const outbound = an.getByRole("switch", { name: `Cho phép gọi ra: ${AN}` });
  const autoAnswer = an.getByRole("switch", { name: `Tự động trả lời: ${AN}` });
  await outbound.click();
  await expect(outbound).not.toBeChecked();
  await autoAnswer.click();
  await expect(autoAnswer).toBeChecked();
  const id = await an.getAttribute("data-user");
  const user = await api(`/v1/users/${id}`);
  expect([user.outbound_allowed, user.auto_answer]).toEqual([false, true]);
  await outbound.click();
  await expect(outbound).toBeChecked();
  await autoAnswer.click();
  await expect(autoAnswer).not.toBeChecked();
});

test("Tìm kiếm “nguyen van an” (không dấu)", async ({ operator }) => {
  const { page } = operator;
  await page.getByLabel("Tìm kiếm").fill("nguyen van an");
  const names = page.getByTestId("users").locator("tbody tr td:first-child p:first-child");
  await expect(names).toHaveText(["Nguyễn Văn An", "Nguyễn Văn Anh"]);
  await expect(page.getByText("1–2 trên 2 người dùng")).toBeVisible();
  await page.getByLabel("Tìm kiếm").fill("");
  await expect(page.getByTestId("users").locator("tbody tr")).toHaveCount(50);
});

test("Hai thẻ cùng sửa một người dùng: thẻ thứ hai được báo", async ({ operator }) => {
  const first = operator.page;
  const second = await operator.context.newPage();
  const errors = watchErrors(second);
  await second.goto("/config/antring/users");
  await signIn(second, env.operator);
  const who = "Lê Thị Hoa";
  await expect(row(second, who)).toHaveCount(1);
  await expect(row(first, who)).toHaveCount(1);
  // The first tab turns auto-answer on; the second, still showing the user as they were,
  // turns outbound calls off and is told, its row redrawn as the user now is.
  await row(first, who)
    .getByRole("switch", { name: `Tự động trả lời: ${who}` })
    .click();
  await expect(
    row(first, who).getByRole("switch", { name: `Tự động trả lời: ${who}` }),
  ).toBeChecked();
  await row(second, who)
    .getByRole("switch", { name: `Cho phép gọi ra: ${who}` })
    .click();
  await expect(second.getByText(`${who} vừa được thay đổi ở nơi khác`)).toBeVisible();
  await expect(
    row(second, who).getByRole("switch", { name: `Tự động trả lời: ${who}` }),
  ).toBeChecked();
  await expect(
    row(second, who).getByRole("switch", { name: `Cho phép gọi ra: ${who}` }),
  ).toBeChecked();
  await screenshot(second, "09-conflict");
  expect(errors).toEqual([]);
  await second.close();
});

test("Người chỉ xem không thay đổi được gì (a viewer cannot change anything)", async ({
  browser,
}) => {
  const context = await browser.newContext({ baseURL: env.consoleUrl, locale: "vi-VN" });
  const page = await context.newPage();
  const errors = watchErrors(page);
  await page.goto("/config/antring/users");
  await signIn(page, env.viewer);
  await expect(page.locator("[data-role]")).toHaveText("Chỉ xem");
  const table = page.getByTestId("users");
  await expect(table.locator("tbody tr")).toHaveCount(50);
  await expect(table.getByRole("switch")).toHaveCount(0);
  await expect(table.getByRole("button", { name: "Thêm mới" })).toHaveCount(0);
  await expect(table.getByRole("textbox")).toHaveCount(0);
  await expect(table.getByTestId("minutes")).toHaveCount(0);
  await expect(row(page, AN).getByText("0/Không giới hạn")).toBeVisible();
  const device = row(page, AN).locator("[data-device] button").first();
  await device.click();
  const dialog = page.getByRole("dialog");
  await expect(dialog.getByRole("tabpanel", { name: "Web" }).getByText("Đã ẩn")).toBeVisible();
  await expect(dialog.getByRole("button", { name: "Hiện mật khẩu" })).toHaveCount(0);
  await screenshot(page, "10-viewer");
  expect(errors).toEqual([]);
  await context.close();
});

test("English after switching", async ({ operator }) => {
  const { page } = operator;
  await page.getByRole("radiogroup", { name: "Ngôn ngữ" }).getByText("English").click();
  const table = page.getByTestId("users");
  await expect(table.getByRole("columnheader")).toHaveText([
    "User",
    "Device",
    "Extensions",
    "Minutes called / Minutes allowed",
    "Allow outbound calls",
    "Auto answer",
  ]);
  const an = row(page, AN);
  await expect(an.getByTestId("minutes")).toHaveText("0/Unlimited");
  // The service answers in English too.
  await an.getByRole("combobox", { name: `Extension for ${AN}`, exact: true }).fill("1");
  await an.getByRole("button", { name: `Add an extension for ${AN}` }).click();
  await expect(an.getByText("Enter 2 to 4 digits.")).toBeVisible();
  await screenshot(page, "11-english");
  await page.getByRole("radiogroup", { name: "Language" }).getByText("Tiếng Việt").click();
  await expect(table.getByRole("columnheader").first()).toHaveText("Người dùng");
});

test("Phiên đăng nhập được gia hạn tự động (the token is renewed silently)", async ({
  operator,
}) => {
  const { page } = operator;
  // The tests' provider gives the console 70-second tokens; it renews them in a hidden frame
  // a minute before they expire, without a reload or a visit to the provider's pages.
  expect(operator.firstToken).toBeTruthy();
  await expect
    .poll(() => accessToken(page), { timeout: 30_000, intervals: [1_000] })
    .not.toBe(operator.firstToken);
  await expect(page).toHaveURL(/\/config\/antring\/users$/);
  await page.getByLabel("Tìm kiếm").fill("le thi hoa");
  await expect(page.getByTestId("users").locator("tbody tr")).toHaveCount(1);
  await page.getByLabel("Tìm kiếm").fill("");
});

test("Đăng nhập phát triển bằng khóa API (make run, no identity provider)", async ({ browser }) => {
  const context = await browser.newContext({ baseURL: env.devConsoleUrl, locale: "vi-VN" });
  const page = await context.newPage();
  const errors = watchErrors(page);
  await page.goto("/config/antring/users");
  await expect(page.getByText("Đăng nhập phát triển (khóa API)")).toBeVisible();
  await expect(page.getByRole("button", { name: "Đăng nhập", exact: true })).toHaveCount(0);
  await page.getByRole("textbox", { name: "Khóa API" }).fill(env.adminKey);
  await page.getByRole("button", { name: "Đăng nhập bằng khóa" }).click();
  await expect(page.locator("[data-role]")).toHaveText("Quản trị");
  await expect(page.getByTestId("users").locator("tbody tr")).toHaveCount(50);
  expect(await page.evaluate(() => Object.values(localStorage).join(" "))).not.toContain(
    env.adminKey,
  );
  await screenshot(page, "12-development-sign-in");
  expect(errors).toEqual([]);
  await context.close();
});
