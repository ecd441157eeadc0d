import { ActionIcon, Badge, Group, Stack, Text, TextInput } from "@mantine/core";
import { IconPlus, IconX } from "@tabler/icons-react";
import { useQuery } from "@tanstack/react-query";
import { useId, useState } from "react";
import { useTranslation } from "react-i18next";
import { api, type User, unwrap } from "../api";
import { fieldError, useRowMutation } from "../rows";

// "Số nội bộ": type 2–4 digits and press (+), (x) removes one. While the field has focus, the
// next free numbers of the length typed (four digits before anything is typed) are offered.
export function Extensions({ user, editable }: { user: User; editable: boolean }) {
  const { t } = useTranslation();
  const [number, setNumber] = useState("");
  const [focused, setFocused] = useState(false);
  const listId = useId();
  const digits = Math.min(4, Math.max(2, number.length || 4));
  const free = useQuery({
    queryKey: ["free-extensions", digits],
    queryFn: async () =>
      unwrap(
        await api.GET("/v1/extensions/available", { params: { query: { digits, limit: 5 } } }),
      ),
    enabled: editable && focused,
    staleTime: 5_000,
  });
  const add = useRowMutation(
    user,
    async (value: string) =>
      unwrap(
        await api.POST("/v1/users/{user_id}/extensions", {
          params: { path: { user_id: user.id } },
          body: { number: value },
        }),
      ),
    { fields: ["body.number"], onSuccess: () => setNumber("") },
  );
  const remove = useRowMutation(user, async (value: string) => {
    const result = await api.DELETE("/v1/users/{user_id}/extensions/{number}", {
      params: {
        path: { user_id: user.id, number: value },
        header: { prefer: "return=representation" },
      },
    });
    return (unwrap(result) as { user: User } | undefined) ?? null;
  });
  return (
    <Stack gap={6}>
      <Group gap={4}>
        {user.extensions.map((extension) => (
          <Badge
            key={extension}
            variant="light"
            size="lg"
            rightSection={
              editable ? (
                <ActionIcon
                  size="xs"
                  variant="transparent"
                  aria-label={t("extensions.remove", { number: extension })}
                  onClick={() => remove.mutate(extension)}
                >
                  <IconX size={12} />
                </ActionIcon>
              ) : undefined
            }
          >
            {extension}
          </Badge>
        ))}
        {!editable && user.extensions.length === 0 && <Text size="sm">–</Text>}
      </Group>
      {editable && (
        <form
          onSubmit={(event) => {
            event.preventDefault();
            add.mutate(number.trim());
          }}
        >
          <Group gap={4} align="flex-start" wrap="nowrap">
            <TextInput
              size="xs"
              w={110}
              aria-label={t("extensions.number", { name: user.display_name })}
              placeholder={t("extensions.placeholder")}
              inputMode="numeric"
              autoComplete="off"
              list={listId}
              value={number}
              onChange={(event) => setNumber(event.currentTarget.value)}
              onFocus={() => setFocused(true)}
              error={fieldError(add.error, "body.number")}
            />
            <datalist id={listId} aria-label={t("extensions.free")}>
              {free.data?.numbers.map((option) => (
                <option key={option} value={option} />
              ))}
            </datalist>
            <ActionIcon
              type="submit"
              size="md"
              variant="light"
              loading={add.isPending}
              aria-label={t("extensions.add", { name: user.display_name })}
            >
              <IconPlus size={14} />
            </ActionIcon>
          </Group>
        </form>
      )}
    </Stack>
  );
}
