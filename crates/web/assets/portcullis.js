// Small helpers shared by every page: JSON calls to this server, passkey ceremonies in the
// browser's own JSON form, messages a person can act on, copy buttons and confirmations.
// Pages that need more (sign-in, security info) load their own script after this one and use
// window.Portcullis. No framework: the pages are rendered on the server and work without
// waiting for this file.
"use strict";

(function () {
  // Messages for Entra's sign-in error codes; the server's own message is used otherwise.
  const SIGN_IN_CODES = {
    50126: "That didn't work. Check what you typed and try again.",
    50053: "Your account is locked for now after too many wrong attempts. Wait 15 minutes, then try again.",
    50057: "This account is disabled. Ask your administrator.",
    53003: "Your organization's policy blocked this sign-in.",
  };
  // Messages for refusals a person can act on, by the server's error code.
  const ERROR_CODES = {
    passkeyModelNotAllowed: "Your organization doesn't allow this kind of passkey (the device or app that made it isn't on its approved list), so it wasn't added. Try again with an approved security key or device, or ask your administrator which ones you can use.",
    passkeyAttestationRequired: "Your organization only accepts passkeys whose maker can be verified, and this one couldn't be. Try a security key or device your administrator approved.",
  };

  // Calls this server with a JSON body (same origin, with the session cookie). Never throws:
  // a network failure is a reply with status 0, so every caller has one path for failures.
  async function api(method, path, body) {
    const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (e) {
      return { ok: false, status: 0, body: null };
    }
    let parsed = null;
    const text = await response.text();
    if (text) {
      try { parsed = JSON.parse(text); } catch (e) { parsed = null; }
    }
    return { ok: response.ok, status: response.status, body: parsed };
  }

  // The error code the server gave ("signInFlowNotFound", …), if any.
  function errorCode(reply) {
    return reply && reply.body && reply.body.error ? reply.body.error.code : undefined;
  }

  // A sentence for a failed reply: never raw JSON, never a stack trace.
  function message(reply) {
    if (!reply || reply.status === 0) {
      return "We couldn't reach the server. Check your connection and try again.";
    }
    const error = reply.body && reply.body.error;
    const requestId = error && error.innerError ? error.innerError["request-id"] : undefined;
    if (reply.status >= 500 || !error) {
      return "Something went wrong on our side; nothing was changed. Try again in a moment." +
        (requestId ? " (Reference: " + requestId + ")" : "");
    }
    if (error.errorCode && SIGN_IN_CODES[error.errorCode]) {
      return SIGN_IN_CODES[error.errorCode];
    }
    if (error.code && ERROR_CODES[error.code]) {
      return ERROR_CODES[error.code];
    }
    return error.message || "That didn't work. Try again.";
  }

  // What went wrong at the authenticator, in words.
  function passkeyMessage(e) {
    switch (e && e.name) {
      case "NotAllowedError":
        return "The passkey request was cancelled or timed out. Try again when you're ready.";
      case "InvalidStateError":
        return "This device already has a passkey for your account.";
      case "SecurityError":
        return "Passkeys can't be used on this address. Ask your administrator.";
      case "NotSupportedError":
        return "This browser or device doesn't support passkeys.";
      case "AbortError":
        return "";
      default:
        return "The passkey couldn't be used. Try again.";
    }
  }

  function passkeysSupported() {
    return typeof window.PublicKeyCredential === "function" &&
      typeof PublicKeyCredential.parseRequestOptionsFromJSON === "function";
  }

  // Runs a ceremony from the server's options ({publicKey: …}); resolves to the credential in
  // JSON form, ready to send back.
  async function createPasskey(options, signal) {
    const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(options.publicKey);
    const credential = await navigator.credentials.create({ publicKey, signal });
    return credential.toJSON();
  }

  // The model (AAGUID) of a passkey just created, from its authenticator data: bytes 37–52,
  // after the RP ID hash (32), flags (1) and counter (4). Undefined when the browser gave none.
  function passkeyModel(credential) {
    const data = credential && credential.response && credential.response.authenticatorData;
    if (!data) return undefined;
    const binary = atob(data.replace(/-/g, "+").replace(/_/g, "/"));
    if (binary.length < 53) return undefined;
    let hex = "";
    for (let i = 37; i < 53; i++) hex += binary.charCodeAt(i).toString(16).padStart(2, "0");
    return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)].join("-");
  }

  // The sentence that refuses a passkey whose model the tenant's passkey policy does not allow
  // (the registration options' modelRestriction), or null when it is allowed. The server
  // judges again when the passkey is saved; this spares the person a false "created".
  function refusedModel(restriction, credential) {
    if (!restriction) return null;
    const model = passkeyModel(credential);
    const listed = !!model && restriction.aaGuids.includes(model);
    const allowed = restriction.enforcementType === "allow" ? listed : !listed;
    if (allowed) return null;
    return "Your organization doesn't allow this kind of passkey (the device or app that made it isn't on its approved list), so it wasn't added. " +
      "Try again with an approved security key or device, or ask your administrator which ones you can use.";
  }

  // Tells the device that made a refused passkey that this site will never accept it, so it
  // can remove it (the Signal API, where the browser has it; nothing happens elsewhere).
  function forgetPasskey(credential) {
    try {
      if (credential && PublicKeyCredential.signalUnknownCredential) {
        PublicKeyCredential.signalUnknownCredential({ rpId: location.hostname, credentialId: credential.id })
          .catch(() => {});
      }
    } catch (e) { /* the browser has no Signal API */ }
  }

  async function getPasskey(options, mediation, signal) {
    const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options.publicKey);
    const request = { publicKey, signal };
    if (mediation) request.mediation = mediation;
    const credential = await navigator.credentials.get(request);
    return credential.toJSON();
  }

  // Shows `text` in an element (hidden when empty) and moves focus there for screen readers.
  function say(element, text) {
    if (!element) return;
    element.textContent = text || "";
    element.hidden = !text;
    if (text) {
      if (!element.hasAttribute("tabindex")) element.setAttribute("tabindex", "-1");
      element.focus();
    }
  }

  async function copyText(text, status) {
    try {
      await navigator.clipboard.writeText(text);
      if (status) status.textContent = "Copied";
    } catch (e) {
      if (status) status.textContent = "Select the details above and copy them.";
    }
  }

  // <button data-copy="ELEMENT-ID"> copies that element's text.
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-copy]");
    if (!button) return;
    const source = document.getElementById(button.dataset.copy);
    const status = button.parentElement.querySelector("[role=status]");
    if (source) copyText(source.innerText.trim(), status);
  });

  // Asks before something that cannot be undone; resolves to true when confirmed. Uses a
  // <dialog>, which keeps focus inside it and closes on Escape.
  function confirmAction(title, text, confirmLabel) {
    return new Promise((resolve) => {
      const dialog = document.createElement("dialog");
      dialog.className = "dialog";
      dialog.setAttribute("aria-labelledby", "confirm-title");
      const heading = document.createElement("h2");
      heading.id = "confirm-title";
      heading.textContent = title;
      const body = document.createElement("p");
      body.textContent = text;
      const actions = document.createElement("div");
      actions.className = "actions";
      const ok = document.createElement("button");
      ok.className = "button button-danger";
      ok.type = "button";
      ok.textContent = confirmLabel;
      const cancel = document.createElement("button");
      cancel.className = "button button-secondary";
      cancel.type = "button";
      cancel.textContent = "Cancel";
      actions.append(ok, cancel);
      dialog.append(heading, body, actions);
      document.body.append(dialog);
      const done = (answer) => { dialog.close(); dialog.remove(); resolve(answer); };
      ok.addEventListener("click", () => done(true));
      cancel.addEventListener("click", () => done(false));
      dialog.addEventListener("cancel", (e) => { e.preventDefault(); done(false); });
      dialog.showModal();
      cancel.focus();
    });
  }

  // Moments in the browser's own time zone: every <time datetime> the server rendered in UTC
  // is rewritten with Intl ("6 Dec 2026, 13:04 CET"); the UTC text stays as its tooltip, and
  // stays as the text when Intl is missing or the value does not parse.
  function localTimes(root) {
    if (typeof Intl !== "object" || !Intl.DateTimeFormat) return;
    const format = new Intl.DateTimeFormat(undefined, {
      year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
      timeZoneName: "short",
    });
    (root || document).querySelectorAll("time[datetime]").forEach((el) => {
      const at = new Date(el.getAttribute("datetime"));
      if (isNaN(at.getTime())) return;
      if (!el.title) el.title = el.textContent;
      el.textContent = format.format(at);
      el.dataset.local = "true";
    });
  }
  localTimes();

  window.Portcullis = {
    api, errorCode, message, passkeyMessage, passkeysSupported, createPasskey, getPasskey,
    say, copyText, confirmAction, localTimes, refusedModel, forgetPasskey,
  };
})();
