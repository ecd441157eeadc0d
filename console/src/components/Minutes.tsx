import {
  Button,
  Checkbox,
  Group,
  Modal,
  NumberInput,
  Stack,
  Text,
  UnstyledButton,
} from "@mantine/core";
import { useState } from "react";
import { useTranslation } from "react-i18next";
import { api, ifMatch, type User, unwrap } from "../api";
import { fieldError, useRowMutation } from "../rows";

// "Số phút đã gọi/Số phút được gọi": the minutes called this month over the minutes allowed;
// pressing it opens the dialog where "Không giới hạn" is ticked unless a limit is set.
export function Minutes({ user, editable }: { user: User; editable: boolean }) {
  const { t } = useTranslation();
  const [open, setOpen] = useState(false);
  const { used_minutes, limit_minutes } = user.minutes;
  const text = t("minutes.cell", {
    used: used_minutes,
    limit: limit_minutes ?? t("minutes.unlimited"),
  });
  if (!editable) return <Text size="sm">{text}</Text>;
  return (
    <>
      <UnstyledButton
        onClick={() => setOpen(true)}
        aria-label={`${t("minutes.open", { name: user.display_name })}: ${text}`}
      >
        <Text component="span" size="sm" td="underline" data-testid="minutes">
          {text}
        </Text>
      </UnstyledButton>
      {open && <MinutesDialog user={user} onClose={() => setOpen(false)} />}
    </>
  );
}

function MinutesDialog({ user, onClose }: { user: User; onClose: () => void }) {
  const { t } = useTranslation();
  const [unlimited, setUnlimited] = useState(user.minutes.limit_minutes === null);
  const [limit, setLimit] = useState<string | number>(user.minutes.limit_minutes ?? "");
  const save = useRowMutation(
    user,
    async () =>
      unwrap(
        await api.PUT("/v1/users/{user_id}/quota", {
          params: {
            path: { user_id: user.id },
            header: { "if-match": ifMatch(user.minutes.version) },
          },
          body: {
            limit_minutes: unlimited ? null : typeof limit === "number" ? limit : Number(limit),
          },
        }),
      ),
    { fields: ["body.limit_minutes"], onSuccess: onClose },
  );
  return (
    <Modal
      opened
      onClose={onClose}
      closeButtonProps={{ "aria-label": t("app.closeDialog") }}
      title={t("minutes.title")}
    >
      <form
        onSubmit={(event) => {
          event.preventDefault();
          save.mutate(undefined);
        }}
      >
        <Stack>
          <Text size="sm">
            {t("minutes.who", {
              name: user.display_name,
              used: user.minutes.used_minutes,
              period: user.minutes.period,
            })}
          </Text>
          <Checkbox
            label={t("minutes.unlimited")}
            checked={unlimited}
            onChange={(event) => setUnlimited(event.currentTarget.checked)}
            data-autofocus
          />
          <NumberInput
            label={t("minutes.limit")}
            description={t("minutes.limitHint")}
            value={limit}
            onChange={setLimit}
            disabled={unlimited}
            min={0}
            allowDecimal={false}
            allowNegative={false}
            error={fieldError(save.error, "body.limit_minutes")}
          />
          <Group justify="flex-end">
            <Button variant="default" onClick={onClose}>
              {t("minutes.cancel")}
            </Button>
            <Button type="submit" loading={save.isPending} disabled={!unlimited && limit === ""}>
              {t("minutes.ok")}
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
