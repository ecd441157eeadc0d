"""The user record: the `user_account` table with its one write path (a single change and the
import's bulk forms), its not-found error, the user a route loads with its tenant and row lock.
Every domain that refers to a user (devices, extensions, quotas, call control, provisioning)
takes it from here; the Users aggregate (app/users) sits above them all."""
