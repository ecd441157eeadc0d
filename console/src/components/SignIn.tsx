import { Alert, Button, Center, Paper, PasswordInput, Stack, Text, Title } from "@mantine/core";
import { useState } from "react";
import { useTranslation } from "react-i18next";
import { auth } from "../auth";

export function SignIn({ expired }: { expired: boolean }) {
  const { t } = useTranslation();
  const [key, setKey] = useState("");
  return (
    <Center mih="100vh" p="md">
      <Paper withBorder p="xl" w={440} component="main">
        <Stack>
          <Title order={1} size="h2">
            {t("signIn.title")}
          </Title>
          {expired && <Alert color="yellow">{t("signIn.expired")}</Alert>}
          {auth.usesProvider ? (
            <>
              <Text>{t("signIn.intro")}</Text>
              <Button onClick={() => void auth.signIn()}>{t("signIn.button")}</Button>
            </>
          ) : (
            <form
              onSubmit={(event) => {
                event.preventDefault();
                if (key.trim()) auth.signInWithKey(key.trim());
              }}
            >
              <Stack>
                <Alert color="orange" title={t("signIn.devTitle")}>
                  {t("signIn.devWarning")}
                </Alert>
                <PasswordInput
                  label={t("signIn.devKey")}
                  description={t("signIn.devKeyHint")}
                  value={key}
                  onChange={(event) => setKey(event.currentTarget.value)}
                  autoComplete="off"
                  required
                />
                <Button type="submit">{t("signIn.devButton")}</Button>
              </Stack>
            </form>
          )}
        </Stack>
      </Paper>
    </Center>
  );
}
