import { Group, Pagination, Select, Stack, Table, Text, TextInput, Title } from "@mantine/core";
import { useDebouncedValue } from "@mantine/hooks";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { useTranslation } from "react-i18next";
import { api, USER_SORTS, type User, type UserSort, unwrap } from "../api";
import { POLL_SECONDS } from "../live";
import { canEdit, useSession } from "../session";
import { Devices } from "./Devices";
import { Extensions } from "./Extensions";
import { Minutes } from "./Minutes";
import { Toggle } from "./Toggle";

const PAGE_SIZE = 50;

export function UsersTable() {
  const { t } = useTranslation();
  const { role, live } = useSession();
  const [typed, setTyped] = useState("");
  const [search] = useDebouncedValue(typed.trim(), 250);
  const [sort, setSort] = useState<UserSort>("given_name");
  const [page, setPage] = useState(1);
  const users = useQuery({
    queryKey: ["users", { search, sort, page }],
    queryFn: async () =>
      unwrap(
        await api.GET("/v1/users", {
          params: {
            query: {
              ...(search ? { search } : {}),
              sort,
              limit: PAGE_SIZE,
              offset: (page - 1) * PAGE_SIZE,
            },
          },
        }),
      ),
    placeholderData: keepPreviousData,
    refetchInterval: live === "polling" ? POLL_SECONDS * 1000 : false,
    refetchOnWindowFocus: live !== "live",
  });
  const data = users.data;
  const pages = data ? Math.max(1, Math.ceil(data.total / PAGE_SIZE)) : 1;
  const editable = canEdit(role);
  return (
    <Stack>
      <Title order={1}>{t("users.title")}</Title>
      <Group align="end">
        <TextInput
          label={t("users.search")}
          placeholder={t("users.searchHint")}
          value={typed}
          onChange={(event) => {
            setTyped(event.currentTarget.value);
            setPage(1);
          }}
          type="search"
          w={420}
        />
        <Select
          label={t("users.sort")}
          data={USER_SORTS.map((value) => ({ value, label: t(`users.sorts.${value}`) }))}
          value={sort}
          onChange={(value) => {
            if (value) setSort(value as UserSort);
            setPage(1);
          }}
          allowDeselect={false}
          w={220}
        />
      </Group>
      {users.error && (
        <Text c="red" role="alert">
          {users.error.message}
        </Text>
      )}
      <Table.ScrollContainer minWidth={1100}>
        <Table
          striped
          highlightOnHover
          verticalSpacing="xs"
          aria-busy={users.isFetching}
          data-testid="users"
        >
          <Table.Thead>
            <Table.Tr>
              <Table.Th>{t("users.columns.agent")}</Table.Th>
              <Table.Th>{t("users.columns.devices")}</Table.Th>
              <Table.Th>{t("users.columns.extensions")}</Table.Th>
              <Table.Th>{t("users.columns.minutes")}</Table.Th>
              <Table.Th>{t("users.columns.outbound")}</Table.Th>
              <Table.Th>{t("users.columns.autoAnswer")}</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {data?.items.map((user) => (
              <UserRow key={user.id} user={user} editable={editable} />
            ))}
          </Table.Tbody>
        </Table>
      </Table.ScrollContainer>
      {data && data.items.length === 0 && <Text>{t("users.empty")}</Text>}
      {data && data.total > 0 && (
        <Group justify="space-between">
          <Text size="sm">
            {t(data.total_is_estimate ? "users.countAtLeast" : "users.count", {
              from: data.offset + 1,
              to: data.offset + data.items.length,
              total: data.total,
            })}
          </Text>
          <Pagination
            total={pages}
            value={page}
            onChange={setPage}
            aria-label={t("users.pages")}
            getItemProps={(item) => ({ "aria-label": `${t("users.pages")} ${item}` })}
          />
        </Group>
      )}
    </Stack>
  );
}

function UserRow({ user, editable }: { user: User; editable: boolean }) {
  const { t } = useTranslation();
  return (
    <Table.Tr data-user={user.id}>
      <Table.Td>
        <Text fw={500}>{user.display_name}</Text>
        {user.email && (
          <Text size="xs" c="dimmed">
            {user.email}
          </Text>
        )}
      </Table.Td>
      <Table.Td>
        <Devices user={user} editable={editable} />
      </Table.Td>
      <Table.Td>
        <Extensions user={user} editable={editable} />
      </Table.Td>
      <Table.Td>
        <Minutes user={user} editable={editable} />
      </Table.Td>
      <Table.Td>
        <Toggle
          user={user}
          field="outbound_allowed"
          label={t("users.outboundLabel", { name: user.display_name })}
          editable={editable}
        />
      </Table.Td>
      <Table.Td>
        <Toggle
          user={user}
          field="auto_answer"
          label={t("users.autoAnswerLabel", { name: user.display_name })}
          editable={editable}
        />
      </Table.Td>
    </Table.Tr>
  );
}
