import { Alert, Center, Loader } from "@mantine/core";
import { createFileRoute, useNavigate } from "@tanstack/react-router";
import { useEffect, useState } from "react";
import { useTranslation } from "react-i18next";
import { auth } from "../auth";

export const Route = createFileRoute("/signed-in")({ component: SignedIn });

// The provider's answer is read once, even when React runs the effect twice.
let completing: Promise<string> | null = null;

function SignedIn() {
  const navigate = useNavigate();
  const { t } = useTranslation();
  const [failure, setFailure] = useState<string | null>(null);
  useEffect(() => {
    completing ??= auth.completeSignIn();
    completing
      .then((to) => navigate({ to, replace: true }))
      .catch((error: unknown) => {
        auth.failSignIn();
        setFailure(error instanceof Error ? error.message : String(error));
      })
      .finally(() => {
        completing = null;
      });
  }, [navigate]);
  return (
    <Center h="100vh">
      {failure ? (
        <Alert color="red" role="alert">
          {t("signIn.failed", { reason: failure })}
        </Alert>
      ) : (
        <Loader aria-label={t("signIn.completing")} />
      )}
    </Center>
  );
}
