// The table follows the service's event stream (`GET /v1/events/stream`, server-sent events
// carrying the webhooks' events): an event about a user redraws that user's row from the
// service, one about something else refreshes the pages shown. A service without the stream
// (404) is followed by refreshing on focus and every POLL_SECONDS instead.
import { EventStreamContentType, fetchEventSource } from "@microsoft/fetch-event-source";
import type { QueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { api, apiUrl, type User, type UserPage, unwrap } from "./api";
import { currentLanguage } from "./i18n";

export const POLL_SECONDS = 30;
export type LiveMode = "connecting" | "live" | "polling";

class StreamUnavailable extends Error {}

interface EventData {
  user_id?: string;
  id?: string;
}

// An event as the webhooks carry it ({type, timestamp, data}); a stream that sends only its
// data, with the type as the SSE event name, is read the same way.
interface ServiceEvent extends EventData {
  type?: string;
  data?: EventData;
}

/** Puts the service's answer for one user into every cached page that shows them. */
export function redrawRow(queryClient: QueryClient, user: User) {
  queryClient.setQueriesData<UserPage>({ queryKey: ["users"] }, (page) =>
    page ? { ...page, items: page.items.map((row) => (row.id === user.id ? user : row)) } : page,
  );
}

export function shownUser(queryClient: QueryClient, userId: string): boolean {
  return queryClient
    .getQueriesData<UserPage>({ queryKey: ["users"] })
    .some(([, page]) => page?.items.some((row) => row.id === userId));
}

/** Reads one user again and redraws their row; a user gone refreshes the pages. */
export async function refreshRow(queryClient: QueryClient, userId: string) {
  const result = await api.GET("/v1/users/{user_id}", { params: { path: { user_id: userId } } });
  if (result.response.status === 404) {
    await queryClient.invalidateQueries({ queryKey: ["users"] });
    return;
  }
  redrawRow(queryClient, unwrap(result));
}

function affectedUser(event: ServiceEvent): string | undefined {
  const data = event.data ?? event;
  if (data.user_id) return data.user_id;
  if (event.type?.startsWith("user.")) return data.id;
  return undefined;
}

export function useLiveUpdates(queryClient: QueryClient, token: string | null): LiveMode {
  const [mode, setMode] = useState<LiveMode>("connecting");
  useEffect(() => {
    if (!token) return;
    const controller = new AbortController();
    void fetchEventSource(`${apiUrl}/v1/events/stream`, {
      signal: controller.signal,
      openWhenHidden: true,
      headers: {
        Authorization: `Bearer ${token}`,
        "Accept-Language": currentLanguage(),
      },
      async onopen(response) {
        const type = response.headers.get("content-type") ?? "";
        if (response.ok && type.startsWith(EventStreamContentType)) {
          setMode("live");
          // Whatever changed while the stream was down is read once.
          await queryClient.invalidateQueries({ queryKey: ["users"] });
          return;
        }
        throw new StreamUnavailable(`HTTP ${response.status}`);
      },
      onmessage(message) {
        if (!message.data) return;
        let event: ServiceEvent;
        try {
          event = { type: message.event, ...(JSON.parse(message.data) as ServiceEvent) };
        } catch {
          return;
        }
        const userId = affectedUser(event);
        if (userId && shownUser(queryClient, userId)) {
          void refreshRow(queryClient, userId);
        } else if (
          userId ||
          event.type?.startsWith("device.") ||
          event.type?.startsWith("extension.")
        ) {
          void queryClient.invalidateQueries({ queryKey: ["users"] });
        }
      },
      onerror(error) {
        // No stream here (404, 403, not an event stream): stop trying and poll instead.
        if (error instanceof StreamUnavailable) {
          setMode("polling");
          throw error;
        }
        setMode("polling");
        return 5000; // a dropped stream is opened again after 5 s
      },
    }).catch(() => setMode("polling"));
    return () => controller.abort();
  }, [queryClient, token]);
  return mode;
}
