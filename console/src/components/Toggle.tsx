import { Switch, Text } from "@mantine/core";
import { useTranslation } from "react-i18next";
import { api, ifMatch, type User, unwrap } from "../api";
import { useRowMutation } from "../rows";

type Field = "outbound_allowed" | "auto_answer";

// "Cho phép gọi ra" and "Tự động trả lời": a switch for those who may change them, the state in
// words for the others.
export function Toggle({
  user,
  field,
  label,
  editable,
}: {
  user: User;
  field: Field;
  label: string;
  editable: boolean;
}) {
  const { t } = useTranslation();
  const flip = useRowMutation(user, async (value: boolean) =>
    unwrap(
      await api.PATCH("/v1/users/{user_id}/toggles", {
        params: { path: { user_id: user.id }, header: { "if-match": ifMatch(user.version) } },
        body: { [field]: value },
      }),
    ),
  );
  const on = user[field];
  if (!editable) return <Text size="sm">{on ? t("users.on") : t("users.off")}</Text>;
  return (
    <Switch
      checked={on}
      aria-label={label}
      disabled={flip.isPending}
      onChange={(event) => flip.mutate(event.currentTarget.checked)}
    />
  );
}
