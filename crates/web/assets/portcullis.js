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

  window.Portcullis = {
    api, errorCode, message, passkeyMessage, passkeysSupported, createPasskey, getPasskey,
    say, copyText, confirmAction,
  };
})();
