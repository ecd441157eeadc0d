import { Center, Loader } from "@mantine/core";
import { type QueryClient, useQuery, useQueryClient } from "@tanstack/react-query";
import { createRootRouteWithContext, Outlet, useLocation } from "@tanstack/react-router";
import { useTranslation } from "react-i18next";
import { probeRole } from "../api";
import { useAuth } from "../auth";
import { Shell } from "../components/Shell";
import { SignIn } from "../components/SignIn";
import { useLiveUpdates } from "../live";
import { SessionContext } from "../session";

export const Route = createRootRouteWithContext<{ queryClient: QueryClient }>()({
  component: Root,
});

function Root() {
  const state = useAuth();
  const { pathname } = useLocation();
  const { t } = useTranslation();
  if (pathname === "/signed-in") return <Outlet />;
  if (state.status === "loading") {
    return (
      <Center h="100vh">
        <Loader aria-label={t("app.loading")} />
      </Center>
    );
  }
  if (state.status === "signed-out") return <SignIn expired={state.expired ?? false} />;
  return <SignedIn token={state.token} name={state.name} />;
}

function SignedIn({ token, name }: { token: string; name: string }) {
  const queryClient = useQueryClient();
  const role = useQuery({
    queryKey: ["role"],
    queryFn: probeRole,
    staleTime: Number.POSITIVE_INFINITY,
  });
  const live = useLiveUpdates(queryClient, token);
  return (
    <SessionContext.Provider value={{ role: role.data ?? "viewer", live }}>
      <Shell name={name} role={role.data}>
        <Outlet />
      </Shell>
    </SessionContext.Provider>
  );
}
