import {
  ActionIcon,
  Box,
  Button,
  Code,
  Group,
  Modal,
  PasswordInput,
  Radio,
  Stack,
  Table,
  Tabs,
  Text,
  TextInput,
  UnstyledButton,
} from "@mantine/core";
import { IconPlus, IconX } from "@tabler/icons-react";
import { useMutation, useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { useTranslation } from "react-i18next";
import {
  api,
  type DeviceConfig,
  type DeviceKind,
  type DeviceSummary,
  ifMatch,
  type User,
  unwrap,
} from "../api";
import { fieldError, useRowMutation } from "../rows";

const KINDS: DeviceKind[] = ["web", "softphone", "ip_phone"];

// The "Thiết bị" column: each SIP account with its dot (green while registered), its name
// opening its settings, (X) deleting it; "Thêm mới" adds one.
export function Devices({ user, editable }: { user: User; editable: boolean }) {
  const { t } = useTranslation();
  const [shown, setShown] = useState<DeviceSummary | null>(null);
  const [removing, setRemoving] = useState<DeviceSummary | null>(null);
  const [adding, setAdding] = useState(false);
  return (
    <Stack gap={4} align="flex-start">
      {user.devices.map((device) => (
        <Group key={device.id} gap={6} wrap="nowrap" data-device={device.name}>
          <Box
            component="span"
            role="img"
            aria-label={device.registered ? t("devices.online") : t("devices.offline")}
            data-registered={device.registered}
            w={10}
            h={10}
            bg={device.registered ? "green.7" : "gray.5"}
            style={{ borderRadius: "50%", flex: "none" }}
          />
          <UnstyledButton
            onClick={() => setShown(device)}
            title={t("devices.open", { name: device.name })}
          >
            <Text
              component="span"
              size="sm"
              td="underline"
              c={device.enabled ? undefined : "dimmed"}
            >
              {device.name}
            </Text>
          </UnstyledButton>
          {editable && (
            <ActionIcon
              size="sm"
              variant="subtle"
              color="red"
              aria-label={t("devices.delete", { name: device.name })}
              onClick={() => setRemoving(device)}
            >
              <IconX size={14} />
            </ActionIcon>
          )}
        </Group>
      ))}
      {editable && (
        <Button
          size="compact-xs"
          variant="light"
          leftSection={<IconPlus size={12} />}
          onClick={() => setAdding(true)}
        >
          {t("devices.add")}
        </Button>
      )}
      {shown && (
        <DeviceSettings device={shown} editable={editable} onClose={() => setShown(null)} />
      )}
      {removing && <RemoveDevice user={user} device={removing} onClose={() => setRemoving(null)} />}
      {adding && <AddDevice user={user} onClose={() => setAdding(false)} />}
    </Stack>
  );
}

function Rows({ rows }: { rows: [string, React.ReactNode][] }) {
  return (
    <Table withRowBorders={false} verticalSpacing={4}>
      <Table.Tbody>
        {rows.map(([label, value]) => (
          <Table.Tr key={label}>
            <Table.Th w={180} scope="row">
              {label}
            </Table.Th>
            <Table.Td>{value}</Table.Td>
          </Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  );
}

// A device's settings in the guide's two forms, web and IP phone; the password only after
// "show", which the service writes to the audit trail under the person's name.
function DeviceSettings({
  device,
  editable,
  onClose,
}: {
  device: DeviceSummary;
  editable: boolean;
  onClose: () => void;
}) {
  const { t } = useTranslation();
  const config = useQuery({
    queryKey: ["device-config", device.id],
    queryFn: async () =>
      unwrap(
        await api.GET("/v1/devices/{device_id}/config", {
          params: { path: { device_id: device.id } },
        }),
      ),
  });
  const reveal = useMutation({
    mutationFn: async () =>
      unwrap(
        await api.GET("/v1/devices/{device_id}/config", {
          params: { path: { device_id: device.id }, query: { reveal: "password" } },
        }),
      ),
  });
  const password = reveal.data?.web.password ?? null;
  const passwordCell = password ? (
    <Code data-testid="password">{password}</Code>
  ) : (
    <Group gap="xs">
      <Text size="sm" c="dimmed">
        {t("devices.settings.hidden")}
      </Text>
      {editable && (
        <Button
          size="compact-xs"
          variant="light"
          loading={reveal.isPending}
          onClick={() => reveal.mutate()}
        >
          {t("devices.settings.show")}
        </Button>
      )}
    </Group>
  );
  const view: DeviceConfig | undefined = config.data;
  const s = (key: string) => t(`devices.settings.${key}`);
  return (
    <Modal
      opened
      onClose={onClose}
      closeButtonProps={{ "aria-label": t("app.closeDialog") }}
      title={t("devices.settings.title", { name: device.name })}
      size="lg"
    >
      {view ? (
        <Stack>
          <Tabs defaultValue="web">
            <Tabs.List>
              <Tabs.Tab value="web">{s("web")}</Tabs.Tab>
              <Tabs.Tab value="ip_phone">{s("ipPhone")}</Tabs.Tab>
            </Tabs.List>
            <Tabs.Panel value="web" pt="sm">
              <Rows
                rows={[
                  [s("websocketUrl"), view.web.websocket_url ?? s("none")],
                  [s("uri"), view.web.uri],
                  [s("authorizationUser"), view.web.authorization_user],
                  [s("password"), passwordCell],
                  [s("realm"), view.web.realm],
                  [s("displayName"), view.web.display_name],
                  [
                    s("iceServers"),
                    view.web.ice_servers.flatMap((server) => server.urls).join(", ") || s("none"),
                  ],
                ]}
              />
            </Tabs.Panel>
            <Tabs.Panel value="ip_phone" pt="sm">
              <Rows
                rows={[
                  [s("registrar"), view.ip_phone.registrar],
                  [s("domain"), view.ip_phone.domain],
                  [s("outboundProxy"), view.ip_phone.outbound_proxy],
                  [s("transports"), view.ip_phone.transports.join(", ")],
                  [
                    s("ports"),
                    Object.entries(view.ip_phone.ports)
                      .map(([transport, port]) => `${transport} ${port}`)
                      .join(", "),
                  ],
                  [s("username"), view.ip_phone.username],
                  [s("authId"), view.ip_phone.auth_id],
                  [s("password"), passwordCell],
                  [s("displayName"), view.ip_phone.display_name],
                ]}
              />
            </Tabs.Panel>
          </Tabs>
          {editable && (
            <Text size="xs" c="dimmed">
              {s("showNote")}
            </Text>
          )}
          <Group justify="flex-end">
            <Button variant="default" onClick={onClose}>
              {s("close")}
            </Button>
          </Group>
        </Stack>
      ) : (
        <Text>{config.error ? config.error.message : t("app.loading")}</Text>
      )}
    </Modal>
  );
}

function AddDevice({ user, onClose }: { user: User; onClose: () => void }) {
  const { t } = useTranslation();
  const [name, setName] = useState("");
  const [kind, setKind] = useState<DeviceKind>("softphone");
  const [password, setPassword] = useState("");
  const fields = ["body.name", "body.password", "body.kind"];
  const create = useRowMutation(
    user,
    async () =>
      unwrap(
        await api.POST("/v1/users/{user_id}/devices", {
          params: { path: { user_id: user.id } },
          body: { name: name.trim(), kind, ...(password ? { password } : {}) },
        }),
      ),
    { fields },
  );
  const made = create.data;
  return (
    <Modal
      opened
      onClose={onClose}
      closeButtonProps={{ "aria-label": t("app.closeDialog") }}
      title={t("devices.create.title", { name: user.display_name })}
    >
      {made ? (
        <Stack>
          <Text fw={500}>{t("devices.create.done", { name: made.name })}</Text>
          <Text size="sm">{t("devices.create.shownOnce")}</Text>
          <Group gap="xs">
            <Text size="sm">{t("devices.create.password")}:</Text>
            <Code data-testid="new-password">{made.password}</Code>
          </Group>
          <Group justify="flex-end">
            <Button onClick={onClose}>{t("devices.create.close")}</Button>
          </Group>
        </Stack>
      ) : (
        <form
          onSubmit={(event) => {
            event.preventDefault();
            create.mutate(undefined);
          }}
        >
          <Stack>
            <TextInput
              label={t("devices.create.name")}
              description={t("devices.create.nameHint")}
              value={name}
              onChange={(event) => setName(event.currentTarget.value)}
              error={fieldError(create.error, "body.name")}
              required
              data-autofocus
            />
            <Radio.Group
              label={t("devices.create.kind")}
              value={kind}
              onChange={(value) => setKind(value as DeviceKind)}
              error={fieldError(create.error, "body.kind")}
            >
              <Group mt={4}>
                {KINDS.map((value) => (
                  <Radio key={value} value={value} label={t(`devices.kinds.${value}`)} />
                ))}
              </Group>
            </Radio.Group>
            <PasswordInput
              label={t("devices.create.password")}
              description={t("devices.create.passwordHint")}
              value={password}
              onChange={(event) => setPassword(event.currentTarget.value)}
              error={fieldError(create.error, "body.password")}
              autoComplete="new-password"
            />
            <Group justify="flex-end">
              <Button variant="default" onClick={onClose}>
                {t("devices.create.cancel")}
              </Button>
              <Button type="submit" loading={create.isPending}>
                {t("devices.create.submit")}
              </Button>
            </Group>
          </Stack>
        </form>
      )}
    </Modal>
  );
}

function RemoveDevice({
  user,
  device,
  onClose,
}: {
  user: User;
  device: DeviceSummary;
  onClose: () => void;
}) {
  const { t } = useTranslation();
  const remove = useRowMutation(
    user,
    async () => {
      const result = await api.DELETE("/v1/devices/{device_id}", {
        params: {
          path: { device_id: device.id },
          header: { "if-match": ifMatch(device.version), prefer: "return=representation" },
        },
      });
      return (unwrap(result) as { user: User } | undefined) ?? null;
    },
    { onSuccess: onClose },
  );
  return (
    <Modal
      opened
      onClose={onClose}
      closeButtonProps={{ "aria-label": t("app.closeDialog") }}
      title={t("devices.remove.title")}
    >
      <Stack>
        <Text>{t("devices.remove.question", { name: device.name, user: user.display_name })}</Text>
        <Group justify="flex-end">
          <Button variant="default" onClick={onClose} data-autofocus>
            {t("devices.remove.cancel")}
          </Button>
          <Button color="red" loading={remove.isPending} onClick={() => remove.mutate(undefined)}>
            {t("devices.remove.confirm")}
          </Button>
        </Group>
      </Stack>
    </Modal>
  );
}
