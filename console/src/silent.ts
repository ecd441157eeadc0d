// The page the identity provider sends a silent sign-in back to, in a hidden frame: it hands
// the answer to the console that opened the frame.
import { UserManager } from "oidc-client-ts";

new UserManager({ authority: "", client_id: "", redirect_uri: "" }).signinSilentCallback();
