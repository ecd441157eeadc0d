// The reference web phone: SIP.js from npm, no build step. It takes a device's web view as the
// service gives it and nothing else.
import {
  Inviter,
  Registerer,
  RegistererState,
  SessionState,
  UserAgent,
} from "./node_modules/sip.js/lib/index.js";

const $ = (id) => document.getElementById(id);
let userAgent = null;
let registerer = null;
let session = null;
let mediaTimer = null;

function show(id, state, detail = "") {
  $(id).dataset.state = state;
  // Milliseconds since the page started loading: how long registering or answering took.
  $(id).dataset.ms = String(Math.round(performance.now()));
  $(id).textContent = detail ? `${state}: ${detail}` : state;
}

// A device's web view -> SIP.js's UserAgent options (the view's names are JsSIP's).
export function userAgentOptions(view) {
  const iceServers = (view.ice_servers || []).map((server) => ({
    urls: server.urls,
    username: server.username ?? undefined,
    credential: server.credential ?? undefined,
  }));
  return {
    uri: UserAgent.makeURI(view.uri),
    transportOptions: { server: view.websocket_url },
    authorizationUsername: view.authorization_user,
    authorizationPassword: view.password,
    displayName: view.display_name,
    sessionDescriptionHandlerFactoryOptions: { peerConnectionConfiguration: { iceServers } },
    delegate: { onInvite: incoming },
  };
}

// The service adds these to hotline and internal calls when the agent's auto-answer is on.
export function asksToAutoAnswer(request) {
  const callInfo = request.getHeader("Call-Info") || "";
  const alertInfo = request.getHeader("Alert-Info") || "";
  return /answer-after=0/.test(callInfo) || /auto-?answer/i.test(alertInfo);
}

// Audio packets sent and received on the call so far, from the browser's own statistics: the
// first thing to look at when a call has no sound one way.
async function countMedia(pc) {
  let sent = 0;
  let received = 0;
  (await pc.getStats()).forEach((report) => {
    if (report.kind !== "audio") return;
    if (report.type === "outbound-rtp") sent += report.packetsSent || 0;
    if (report.type === "inbound-rtp") received += report.packetsReceived || 0;
  });
  const media = $("media");
  media.dataset.sent = String(sent);
  media.dataset.received = String(received);
  media.textContent = `${sent} packets sent, ${received} received`;
}

function follow(current, callId) {
  session = current;
  $("call-status").dataset.callId = callId;
  Object.assign($("media").dataset, { sent: "0", received: "0" });
  $("media").textContent = "none";
  current.stateChange.addListener((state) => {
    if (state === SessionState.Established) {
      const remote = new MediaStream();
      const pc = current.sessionDescriptionHandler.peerConnection;
      pc.getReceivers().forEach((receiver) => receiver.track && remote.addTrack(receiver.track));
      $("remote").srcObject = remote;
      show("call-status", "connected");
      mediaTimer = setInterval(() => countMedia(pc).catch(() => {}), 500);
    } else if (state === SessionState.Terminated) {
      clearInterval(mediaTimer);
      show("call-status", "ended");
      session = null;
    }
  });
}

function incoming(invitation) {
  if (session) {
    invitation.reject({ statusCode: 486 });
    return;
  }
  follow(invitation, invitation.request.callId);
  // When the call arrived, to tell how long answering took.
  $("call-status").dataset.arrivedMs = String(Math.round(performance.now()));
  if (asksToAutoAnswer(invitation.request)) {
    show("call-status", "answering", "auto-answer");
    invitation.accept({ sessionDescriptionHandlerOptions: { constraints: { audio: true, video: false } } });
  } else {
    show("call-status", "ringing", invitation.remoteIdentity.uri.user || "");
  }
}

async function register(view) {
  if (!view.websocket_url) {
    show("status", "failed", "this edge serves no WebSocket");
    return;
  }
  await stop();
  show("status", "connecting");
  userAgent = new UserAgent(userAgentOptions(view));
  userAgent.transport.onDisconnect = (error) => {
    if (error) show("status", "failed", `connection lost: ${error.message}`);
  };
  try {
    await userAgent.start();
  } catch (error) {
    show("status", "failed", `no connection to ${view.websocket_url}`);
    return;
  }
  registerer = new Registerer(userAgent);
  registerer.stateChange.addListener((state) => {
    if (state === RegistererState.Registered) show("status", "registered");
    if (state === RegistererState.Unregistered && $("status").dataset.state === "registered") {
      show("status", "unregistered");
    }
  });
  await registerer.register({
    requestDelegate: {
      onReject: (response) =>
        show("status", "failed", `${response.message.statusCode} ${response.message.reasonPhrase}`),
    },
  });
}

async function stop() {
  if (registerer) await registerer.unregister().catch(() => {});
  if (userAgent) await userAgent.stop().catch(() => {});
  registerer = null;
  userAgent = null;
}

function readView() {
  try {
    return JSON.parse($("config").value);
  } catch (error) {
    show("status", "failed", "the settings are not JSON");
    return null;
  }
}

$("register").addEventListener("click", () => {
  const view = readView();
  if (view) register(view);
});
$("unregister").addEventListener("click", () => stop().then(() => show("status", "unregistered")));
$("call").addEventListener("click", () => {
  if (!userAgent || session) return;
  const view = readView();
  const target = UserAgent.makeURI(`sip:${$("number").value.trim()}@${view.realm}`);
  if (!target) return;
  const inviter = new Inviter(userAgent, target, {
    sessionDescriptionHandlerOptions: { constraints: { audio: true, video: false } },
  });
  follow(inviter, inviter.request.callId);
  show("call-status", "calling");
  inviter.invite({
    requestDelegate: {
      onReject: (response) =>
        show("call-status", "refused", `${response.message.statusCode} ${response.message.reasonPhrase}`),
    },
  });
});
$("answer").addEventListener("click", () => {
  if (session && session.accept) session.accept();
});
$("hangup").addEventListener("click", () => {
  if (!session) return;
  if (session.state === SessionState.Established) session.bye();
  else if (session.cancel) session.cancel();
  else if (session.reject) session.reject();
});

const fromHash = new URLSearchParams(location.hash.slice(1)).get("config");
if (fromHash) {
  $("config").value = fromHash;
  const view = readView();
  if (view) register(view);
}
