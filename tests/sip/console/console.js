// The stream read as text/event-stream over fetch: events are separated by a blank line, each
// line is `field: value`. The device dots follow device.registered and device.unregistered.
const query = new URLSearchParams(location.search);
const token = new URLSearchParams(location.hash.slice(1)).get("token");
const service = query.get("service");
const list = document.getElementById("devices");
const state = document.getElementById("state");

for (const id of query.get("devices").split(",")) {
  const item = document.createElement("li");
  item.innerHTML = `<span class="dot" id="dot-${id}"></span> ${id}`;
  list.appendChild(item);
}

function apply(type, data) {
  const dot = document.getElementById(`dot-${data.resource.id}`);
  if (dot === null) return;
  dot.classList.toggle("online", type === "device.registered");
}

async function follow() {
  const types = "device.registered,device.unregistered";
  const response = await fetch(`${service}/v1/events/stream?types=${types}`, {
    headers: { Authorization: `Bearer ${token}`, Accept: "text/event-stream" },
  });
  if (!response.ok) {
    state.textContent = `refused: ${response.status}`;
    return;
  }
  state.textContent = "subscribed";
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replaceAll("\r\n", "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const fields = {};
      for (const line of block.split("\n")) {
        const colon = line.indexOf(":");
        if (colon > 0) fields[line.slice(0, colon)] = line.slice(colon + 1).trimStart();
      }
      if (fields.event && fields.data) apply(fields.event, JSON.parse(fields.data).data);
    }
  }
  state.textContent = "ended";
}

follow().catch((error) => {
  state.textContent = `failed: ${error}`;
});
