// What a console's "add device" form and the Users table's row write against the generated
// types: the new device told apart by `kind` (only an IP phone has a MAC and a model), every
// kind listed with its label, the row redrawn from the write's answer, and a 412's current
// resource. Only compiled (tsc --strict --noEmit); each @ts-expect-error is a rule the types
// must keep.
import type { components, operations } from "antring-api";

type DeviceCreate = operations["create_device"]["requestBody"]["content"]["application/json"];
type DeviceCreated = operations["create_device"]["responses"][201]["content"]["application/json"];
type DeviceKind = components["schemas"]["DeviceKind"];
type PhoneModel = components["schemas"]["PhoneModel"];
type UserRow = components["schemas"]["UserOut"];
type StaleDevice = operations["update_device"]["responses"][412]["content"]["application/problem+json"];
type UserSort = NonNullable<NonNullable<operations["list_users"]["parameters"]["query"]>["sort"]>;

// A select lists every kind; a kind added to the document and missing here fails to compile.
export const KIND_LABELS = {
  web: "Trình duyệt",
  softphone: "Softphone",
  ip_phone: "Điện thoại IP",
} satisfies Record<DeviceKind, string>;

export const SORT_LABELS = {
  display_name: "Họ tên (A-Z)",
  "-display_name": "Họ tên (Z-A)",
  given_name: "Tên (A-Z)",
  "-given_name": "Tên (Z-A)",
  created_at: "Cũ nhất",
  "-created_at": "Mới nhất",
} satisfies Record<UserSort, string>;

interface DeviceForm {
  name: string;
  kind: DeviceKind;
  mac: string;
  model: PhoneModel | "";
}

export function deviceBody(form: DeviceForm): DeviceCreate {
  switch (form.kind) {
    case "ip_phone":
      return {
        kind: "ip_phone",
        name: form.name,
        ...(form.mac ? { mac: form.mac } : {}),
        ...(form.model ? { model: form.model } : {}),
      };
    case "web":
      return { kind: "web", name: form.name };
    case "softphone":
      return { kind: "softphone", name: form.name };
  }
}

// The answer carries the row: the table redraws it without reading the user again.
export function redrawRow(rows: UserRow[], created: DeviceCreated): UserRow[] {
  const password: string = created.password;
  void password;
  return rows.map((row) => (row.id === created.user.id ? created.user : row));
}

// A 412 carries the device as it is now: the form shows it and sends again with its version.
export function retryVersion(stale: StaleDevice): number {
  return stale.current.version;
}

export function contractRules(): void {
  // @ts-expect-error only an IP phone has a MAC address
  const webWithMac: DeviceCreate = { kind: "web", name: "lan.web", mac: "001565aabbcc" };
  // @ts-expect-error only an IP phone has a model
  const softWithModel: DeviceCreate = { kind: "softphone", name: "lan.soft", model: "yealink" };
  // @ts-expect-error a kind the service does not know
  const fax: DeviceCreate = { kind: "fax", name: "lan.fax" };
  // @ts-expect-error a device needs a name
  const nameless: DeviceCreate = { kind: "ip_phone" };
  const phone: DeviceCreate = { kind: "ip_phone", name: "lan.desk", mac: "001565aabbcc" };
  void [webWithMac, softWithModel, fax, nameless, phone];
}
