import {
  AppShell,
  Badge,
  Burger,
  Button,
  Group,
  NavLink,
  SegmentedControl,
  Text,
  Tooltip,
} from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import { useQueryClient } from "@tanstack/react-query";
import { Link, useLocation } from "@tanstack/react-router";
import type { ReactNode } from "react";
import { useTranslation } from "react-i18next";
import type { Role } from "../api";
import { auth } from "../auth";
import { currentLanguage, LANGUAGES } from "../i18n";
import { POLL_SECONDS } from "../live";
import { useSession } from "../session";

// The guide's way in: Main menu → "Configuration" → "AntRing" → "Users".
export function Shell({
  name,
  role,
  children,
}: {
  name: string;
  role: Role | undefined;
  children: ReactNode;
}) {
  const { t, i18n } = useTranslation();
  const [opened, { toggle, close }] = useDisclosure(false);
  const { pathname } = useLocation();
  const { live } = useSession();
  const queryClient = useQueryClient();
  const usersPath = "/config/antring/users";
  const inConfig = pathname.startsWith("/config/");
  return (
    <AppShell
      header={{ height: 56 }}
      navbar={{ width: 260, breakpoint: "sm", collapsed: { mobile: !opened, desktop: !opened } }}
      padding="md"
    >
      <AppShell.Header>
        <Group h="100%" px="md" justify="space-between" wrap="nowrap">
          <Group wrap="nowrap">
            <Burger
              opened={opened}
              onClick={toggle}
              aria-label={t("app.mainMenu")}
              aria-expanded={opened}
            />
            <Text fw={700}>{t("app.name")}</Text>
          </Group>
          <Group wrap="nowrap" gap="sm">
            <Tooltip
              label={
                live === "live"
                  ? t("app.liveHint")
                  : t("app.pollingHint", { seconds: POLL_SECONDS })
              }
            >
              <Badge variant="dot" color={live === "live" ? "green" : "gray"} data-live={live}>
                {live === "live" ? t("app.live") : t("app.polling")}
              </Badge>
            </Tooltip>
            <Text size="sm" visibleFrom="sm">
              {t("app.signedInAs", { name })}
            </Text>
            {role && (
              <Badge variant="light" data-role={role}>
                {t(`app.role.${role}`)}
              </Badge>
            )}
            <SegmentedControl
              size="xs"
              aria-label={t("app.language")}
              value={currentLanguage()}
              onChange={(language) => void i18n.changeLanguage(language)}
              data={LANGUAGES.map((language) => ({
                value: language,
                label: t(`languages.${language}`),
              }))}
            />
            <Button
              size="xs"
              variant="default"
              onClick={() => {
                queryClient.clear();
                void auth.signOut();
              }}
            >
              {t("app.signOut")}
            </Button>
          </Group>
        </Group>
      </AppShell.Header>
      <AppShell.Navbar p="xs" aria-label={t("app.mainMenu")}>
        <NavLink
          component="button"
          label={t("menu.config")}
          defaultOpened={inConfig}
          childrenOffset={16}
        >
          <NavLink
            component="button"
            label={t("menu.antring")}
            defaultOpened={inConfig}
            childrenOffset={16}
          >
            <NavLink
              component={Link}
              to={usersPath}
              label={t("menu.users")}
              active={pathname === usersPath}
              onClick={close}
            />
          </NavLink>
        </NavLink>
      </AppShell.Navbar>
      <AppShell.Main>{children}</AppShell.Main>
    </AppShell>
  );
}
