// Writes from the Users table. Each answers the user's row as the change left it, which is
// drawn at once; a 412 (someone changed the user since the row was drawn) redraws the row from
// the service and says so; any other refusal is told in the service's own words, next to the
// field it names when the form shows that field.
import { notifications } from "@mantine/notifications";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useTranslation } from "react-i18next";
import { ApiProblem, type User } from "./api";
import { redrawRow, refreshRow } from "./live";

export function useRowMutation<V, R extends { user: User } | null>(
  user: User,
  mutationFn: (variables: V) => Promise<R>,
  options: { onSuccess?: (result: R) => void; fields?: string[] } = {},
) {
  const queryClient = useQueryClient();
  const { t } = useTranslation();
  return useMutation({
    mutationFn,
    onSuccess(result) {
      if (result) redrawRow(queryClient, result.user);
      else void refreshRow(queryClient, user.id);
      options.onSuccess?.(result);
    },
    onError(error) {
      if (error instanceof ApiProblem && error.status === 412) {
        void refreshRow(queryClient, user.id);
        notifications.show({
          color: "orange",
          title: t("users.failed"),
          message: t("users.conflict", { name: user.display_name }),
          autoClose: 10_000,
        });
        return;
      }
      const shownByField =
        error instanceof ApiProblem &&
        error.problem.errors?.some((item) => options.fields?.includes(item.field));
      if (shownByField) return;
      notifications.show({
        color: "red",
        title: t("users.failed"),
        message: error instanceof ApiProblem ? error.sentence : t("errors.network"),
      });
    },
  });
}

/** The service's message for one of a form's fields, from a mutation's error. */
export function fieldError(error: unknown, field: string): string | undefined {
  return error instanceof ApiProblem ? error.fieldMessage(field) : undefined;
}
