// The sign-in page: moves between the panels of /signin as the flow answers. The server keeps
// the flow; this script only sends what the person gives and shows what comes back.
"use strict";

(function () {
  const P = window.Portcullis;
  const root = document.querySelector(".signin");
  if (!root) return;
  const errorBox = root.querySelector("[data-error]");
  const returnTo = root.dataset.returnTo;
  let flow = JSON.parse(document.getElementById("flow-state").textContent);
  const flowPath = "/signin/flows/" + encodeURIComponent(flow.flowId);
  // The conditional (autofill) passkey request, aborted when the person chooses another way.
  let autofill = null;
  // A passkey created and waiting for its name.
  let created = null;

  // A reload continues this flow rather than starting another.
  const url = new URL(location.href);
  if (url.searchParams.get("flow") !== flow.flowId) {
    url.searchParams.set("flow", flow.flowId);
    url.searchParams.set("returnTo", returnTo);
    history.replaceState(null, "", url.pathname + "?" + url.searchParams.toString());
  }

  function show(name) {
    root.querySelectorAll("[data-panel]").forEach((p) => { p.hidden = p.dataset.panel !== name; });
    const panel = root.querySelector('[data-panel="' + name + '"]');
    const field = panel && panel.querySelector("input:not([type=hidden])");
    const heading = panel && panel.querySelector("h1");
    if (field) {
      field.focus();
    } else if (heading) {
      heading.setAttribute("tabindex", "-1");
      heading.focus();
    }
  }

  function clearError() { P.say(errorBox, ""); }
  function fail(text) { if (text) P.say(errorBox, text); }

  function fillList(selector, policies) {
    const list = root.querySelector(selector);
    list.replaceChildren(...(policies || []).map((p) => {
      const item = document.createElement("li");
      item.textContent = p.displayName;
      return item;
    }));
  }

  function fillDetails(details) {
    const list = root.querySelector("[data-details]");
    const rows = [
      ["Error code", details.errorCode],
      ["Correlation ID", details.correlationId],
      ["Timestamp", details.timestamp],
      ["App name", details.appDisplayName],
      ["App ID", details.appId],
      ["Device platform", details.platform],
      ["IP address", details.ipAddress || "unknown"],
    ];
    list.replaceChildren(...rows.flatMap(([label, value]) => {
      const dt = document.createElement("dt");
      dt.textContent = label;
      const dd = document.createElement("dd");
      dd.textContent = value === undefined || value === null ? "" : String(value);
      return [dt, dd];
    }));
  }

  // Shows the flow's state: the one place that decides which panel a status means.
  function apply(state) {
    flow = state;
    root.querySelectorAll("[data-username]").forEach((e) => { e.textContent = state.userPrincipalName || ""; });
    switch (state.status) {
      case "identify":
        show("identify");
        break;
      case "firstFactor":
        show("first-factor");
        break;
      case "requirements": {
        const methods = state.methods || [];
        root.querySelector('[data-requirement="fido2"]').hidden = !methods.includes("fido2");
        root.querySelector('[data-requirement="softwareOath"]').hidden = !methods.includes("softwareOath");
        show("requirements");
        break;
      }
      case "registrationNeeded":
        fillList("[data-policies]", state.policies);
        show("register-intro");
        break;
      case "proveRegistration":
        show("prove");
        break;
      case "granted":
      case "completed": // granted, and the application's authorization code issued
        show("granted");
        // A flow from an application's authorize request goes back to it; a sign-in to these
        // pages goes back to the page that asked.
        location.assign(state.redirectUrl || returnTo);
        break;
      case "blocked":
        fillList("[data-blocking-policies]", state.policies);
        if (state.details) fillDetails(state.details);
        show("blocked");
        break;
      default:
        fail("Something unexpected happened. Start again.");
    }
  }

  // Every step's reply goes through here: a state, or a message and perhaps another panel.
  function handle(reply) {
    if (reply.body && reply.body.status && reply.body.flowId) {
      clearError();
      apply(reply.body);
      return true;
    }
    const code = P.errorCode(reply);
    if (code === "signInFlowNotFound") {
      show("expired");
      return false;
    }
    if (code === "signInStepOutOfOrder" || code === "signInFlowSessionMismatch") {
      fail("This sign-in moved on in another window. Start again.");
      show("expired");
      return false;
    }
    fail(P.message(reply));
    return false;
  }

  async function step(path, body) {
    return handle(await P.api("POST", flowPath + path, body));
  }

  function busy(button, on) {
    if (!button) return;
    button.disabled = on;
    button.setAttribute("aria-busy", on ? "true" : "false");
  }

  // A passkey assertion for the flow: first factor, requirement, or the proof of a new one.
  async function passkey(button) {
    clearError();
    stopAutofill();
    busy(button, true);
    try {
      const options = await P.api("POST", flowPath + "/passkey/options", {});
      if (!options.ok) { handle(options); return; }
      let credential;
      try {
        credential = await P.getPasskey(options.body.options);
      } catch (e) {
        fail(P.passkeyMessage(e));
        return;
      }
      await step("/passkey/verify", { ceremonyId: options.body.ceremonyId, credential });
    } finally {
      busy(button, false);
    }
  }

  // Offers passkeys in the username field's autofill while the person is at the first panel.
  async function startAutofill() {
    if (flow.status !== "identify" || !P.passkeysSupported()) return;
    // Asked anyway when the browser says "no": some (headless ones, with a virtual
    // authenticator) answer a conditional request all the same; one that cannot just rejects.
    if (typeof PublicKeyCredential.isConditionalMediationAvailable !== "function") return;
    const options = await P.api("POST", flowPath + "/passkey/options", {});
    if (!options.ok) return;
    autofill = new AbortController();
    // Lets a test (and a curious person's dev tools) see that passkeys are on offer.
    root.dataset.autofill = "offered";
    let credential;
    try {
      credential = await P.getPasskey(options.body.options, "conditional", autofill.signal);
    } catch (e) {
      root.dataset.autofill = "ended";
      return; // aborted because the person chose another way, or nothing was picked
    } finally {
      autofill = null;
    }
    root.dataset.autofill = "chosen";
    await step("/passkey/verify", { ceremonyId: options.body.ceremonyId, credential });
  }

  function stopAutofill() {
    if (autofill) {
      autofill.abort();
      autofill = null;
    }
  }

  async function register(device, button) {
    clearError();
    busy(button, true);
    try {
      const options = await P.api("POST", flowPath + "/registration/options", { device });
      if (!options.ok || !options.body.ceremonyId) { handle(options); return; }
      root.querySelector("[data-waiting-text]").textContent = device === "another"
        ? "Scan the QR code your browser shows with your iPhone, iPad or Android device, then create the passkey there."
        : "Create the passkey when your browser asks: use your screen lock, face or fingerprint.";
      show("register-waiting");
      let credential;
      try {
        credential = await P.createPasskey(options.body.options);
      } catch (e) {
        show("register-where");
        fail(P.passkeyMessage(e));
        return;
      }
      // The model is judged before anything says "created": a refused passkey is dropped
      // from this page (and the device is told), and the person is told why in words.
      const refusal = P.refusedModel(options.body.modelRestriction, credential);
      if (refusal) {
        created = null;
        P.forgetPasskey(credential);
        show("register-where");
        fail(refusal);
        return;
      }
      created = { ceremonyId: options.body.ceremonyId, credential };
      const name = root.querySelector("#passkey-name");
      name.value = device === "another" ? "Phone or tablet" : "This device";
      show("register-name");
      name.select();
    } finally {
      busy(button, false);
    }
  }

  async function saveName(form) {
    const name = form.elements.name.value.trim();
    if (!name) { fail("Give your passkey a name."); return; }
    if (!created) { show("register-where"); return; }
    const reply = await P.api("POST", flowPath + "/registration", {
      ceremonyId: created.ceremonyId, name, credential: created.credential,
    });
    if (!handle(reply)) {
      const code = P.errorCode(reply);
      // A refused or expired passkey cannot be saved by trying again: make another.
      if (code && code !== "invalidRequest" && code !== "signInFlowNotFound") {
        P.forgetPasskey(created.credential);
        created = null;
        show("register-where");
        fail(P.message(reply));
      }
    } else {
      created = null;
    }
  }

  function restart() {
    location.assign("/signin?returnTo=" + encodeURIComponent(returnTo));
  }

  root.addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const button = form.querySelector("button[type=submit]");
    const field = form.querySelector("input[required]");
    if (field && !field.value.trim()) {
      fail("Fill in “" + form.querySelector("label").textContent + "”.");
      field.focus();
      return;
    }
    clearError();
    busy(button, true);
    try {
      switch (form.dataset.form) {
        case "identify":
          stopAutofill();
          await step("/identify", { username: form.elements.username.value.trim() });
          break;
        case "tap":
          await step("/tap", { temporaryAccessPass: form.elements.temporaryAccessPass.value.trim() });
          break;
        case "password":
          await step("/password", { password: form.elements.password.value });
          form.elements.password.value = "";
          break;
        case "totp":
          await step("/totp", { code: form.elements.code.value.trim() });
          break;
        case "register-name":
          await saveName(form);
          break;
      }
    } finally {
      busy(button, false);
    }
  });

  root.addEventListener("click", async (event) => {
    const target = event.target.closest("[data-action], [data-show]");
    if (!target) return;
    event.preventDefault();
    if (target.dataset.show) {
      clearError();
      show(target.dataset.show);
      return;
    }
    switch (target.dataset.action) {
      case "passkey-discoverable":
      case "passkey-first-factor":
      case "passkey-requirement":
      case "passkey-prove":
        await passkey(target);
        break;
      case "register-this":
        await register("this", target);
        break;
      case "register-another":
        await register("another", target);
        break;
      case "copy-details": {
        const lines = [];
        root.querySelectorAll("[data-blocking-policies] li").forEach((li) => lines.push("Policy: " + li.textContent));
        const terms = root.querySelectorAll("[data-details] dt");
        terms.forEach((dt) => lines.push(dt.textContent + ": " + dt.nextElementSibling.textContent));
        await P.copyText(lines.join("\n"), root.querySelector("[data-copied]"));
        break;
      }
      case "sign-out":
        await P.api("POST", "/auth/sign-out");
        restart();
        break;
      case "restart":
        restart();
        break;
    }
  });

  if (flow.status === "granted" || flow.status === "completed") {
    apply(flow);
  } else {
    startAutofill();
  }
})();
