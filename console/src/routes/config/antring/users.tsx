import { createFileRoute } from "@tanstack/react-router";
import { UsersTable } from "../../../components/UsersTable";

export const Route = createFileRoute("/config/antring/users")({ component: UsersTable });
