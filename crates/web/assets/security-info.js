// Security info and My sign-ins: adding, renaming and removing sign-in methods over the /my/…
// JSON endpoints, and signing out. The page is rendered on the server; after a change it is
// loaded again, so what the person sees is always what the server holds.
"use strict";

(function () {
  const P = window.Portcullis;
  const HERE = "/my/security-info";

  document.addEventListener("click", async (event) => {
    const target = event.target.closest(
      "[data-action=sign-out], [data-action=sign-in-again], [data-action=sign-out-everywhere]");
    if (!target) return;
    event.preventDefault();
    if (target.dataset.action === "sign-out-everywhere") {
      if (!confirm("Sign out of every browser and app where you are signed in?")) return;
      await P.api("POST", "/auth/sign-out-everywhere");
    } else {
      await P.api("POST", "/auth/sign-out");
    }
    location.assign("/signin?returnTo=" + encodeURIComponent(location.pathname));
  });

  const root = document.querySelector(".security-info");
  if (!root) return;
  const area = root.querySelector("[data-add-area]");
  const errorBox = root.querySelector("[data-error]");
  const reauth = root.querySelector("[data-reauth]");
  let created = null;

  function fail(text) { P.say(errorBox, text); }
  function clearError() { P.say(errorBox, ""); }

  // A refusal because the sign-in is not recent enough gets the "sign in again" prompt, not
  // an error: it is the one failure the person fixes by signing in.
  function refused(reply) {
    const text = P.message(reply);
    if (reply.status === 401 || (reply.status === 403 && /sign in again/i.test(text))) {
      reauth.querySelector("[data-reauth-text]").textContent =
        reply.status === 401 ? "Your sign-in has expired. Sign in again to continue." : text;
      reauth.hidden = false;
      area.hidden = true;
      reauth.querySelector("button").focus();
      return;
    }
    fail(text);
  }

  function showAdd(name) {
    clearError();
    area.hidden = false;
    area.querySelectorAll("[data-add]").forEach((s) => { s.hidden = s.dataset.add !== name; });
    const step = area.querySelector('[data-add="' + name + '"]');
    const focus = step.querySelector("input:not([type=hidden])") || step.querySelector("h2");
    if (focus) {
      if (focus.tagName === "H2") focus.setAttribute("tabindex", "-1");
      focus.focus();
    }
  }

  function done(what) {
    location.assign(HERE + "?done=" + what);
  }

  async function addPasskey(device, os) {
    clearError();
    const options = await P.api("POST", "/my/passkeys/options", { device });
    if (!options.ok) { refused(options); return; }
    area.querySelector("[data-waiting-text]").textContent = device === "another"
      ? "Your browser shows a QR code. Scan it with your " + (os === "iOS" ? "iPhone or iPad" : "Android device") + " and create the passkey there."
      : "Create the passkey when your browser asks: use your screen lock, face or fingerprint.";
    showAdd("waiting");
    let credential;
    try {
      credential = await P.createPasskey(options.body.options);
    } catch (e) {
      showAdd(device === "another" ? "os" : "passkey");
      fail(P.passkeyMessage(e));
      return;
    }
    // The model is judged before anything says "created": a refused passkey is dropped from
    // this page (and the device is told), and the person is told why in words.
    const refusal = P.refusedModel(options.body.modelRestriction, credential);
    if (refusal) {
      created = null;
      P.forgetPasskey(credential);
      showAdd(device === "another" ? "os" : "passkey");
      fail(refusal);
      return;
    }
    created = { ceremonyId: options.body.ceremonyId, credential };
    showAdd("name");
    const name = area.querySelector("#passkey-name");
    name.value = device === "another" ? (os === "iOS" ? "iPhone or iPad" : "Android device") : "This computer";
    name.select();
  }

  async function startApp() {
    const options = await P.api("POST", "/my/totp/options", {});
    if (!options.ok) { refused(options); return; }
    const form = area.querySelector('[data-add="app"]');
    form.elements.registration.value = options.body.registration;
    // An image, not inline markup: the QR code's SVG cannot run anything from an <img>.
    form.querySelector("[data-qr]").src =
      "data:image/svg+xml;charset=utf-8," + encodeURIComponent(options.body.qrCodeSvg);
    form.querySelector("[data-secret]").textContent = options.body.secret;
    showAdd("app");
  }

  function startRename(row) {
    const cell = row.querySelector("[data-name]").parentElement;
    if (cell.querySelector("form")) return;
    const current = row.querySelector("[data-name]").textContent;
    const form = document.createElement("form");
    form.className = "inline-form";
    form.dataset.form = "rename";
    const label = document.createElement("label");
    label.className = "visually-hidden";
    label.htmlFor = "rename-" + row.dataset.methodId;
    label.textContent = "New name for " + current;
    const input = document.createElement("input");
    input.id = label.htmlFor;
    input.name = "displayName";
    input.maxLength = 64;
    input.value = current;
    const save = document.createElement("button");
    save.className = "button";
    save.type = "submit";
    save.textContent = "Save";
    const cancel = document.createElement("button");
    cancel.className = "button-link";
    cancel.type = "button";
    cancel.textContent = "Cancel";
    cancel.addEventListener("click", () => {
      form.remove();
      row.querySelector("[data-name]").hidden = false;
    });
    form.append(label, input, save, cancel);
    row.querySelector("[data-name]").hidden = true;
    cell.append(form);
    input.select();
    input.focus();
  }

  root.addEventListener("click", async (event) => {
    const target = event.target.closest("[data-action], [data-add-show]");
    if (!target) return;
    event.preventDefault();
    if (target.dataset.addShow) {
      showAdd(target.dataset.addShow);
      return;
    }
    const row = target.closest("tr[data-method-id]");
    switch (target.dataset.action) {
      case "add-cancel":
        created = null;
        area.hidden = true;
        clearError();
        break;
      case "passkey-this":
        await addPasskey("this");
        break;
      case "passkey-another":
        await addPasskey("another", target.dataset.os);
        break;
      case "app-start":
        await startApp();
        break;
      case "rename":
        startRename(row);
        break;
      case "delete": {
        const name = row.querySelector("[data-name]").textContent;
        const ok = await P.confirmAction(
          "Delete “" + name + "”?",
          "You won't be able to sign in with it any more. This can't be undone.",
          "Delete",
        );
        if (!ok) return;
        const path = row.dataset.kind === "passkey" ? "/my/passkeys/" : "/my/totp/";
        const reply = await P.api("DELETE", path + encodeURIComponent(row.dataset.methodId));
        if (reply.ok) done("deleted"); else refused(reply);
        break;
      }
    }
  });

  root.addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const button = form.querySelector("button[type=submit]");
    clearError();
    button.disabled = true;
    try {
      switch (form.dataset.form) {
        case "passkey-name": {
          const name = form.elements.name.value.trim();
          if (!name) { fail("Give your passkey a name."); return; }
          if (!created) { showAdd("passkey"); return; }
          const reply = await P.api("POST", "/my/passkeys", {
            ceremonyId: created.ceremonyId, name, credential: created.credential,
          });
          if (reply.ok) { created = null; done("added"); break; }
          // A refused passkey (its model, its attestation, an expired challenge) cannot be
          // saved by trying again: it leaves the page, and so does the success card.
          if (reply.status !== 401 && P.errorCode(reply) !== "invalidRequest") {
            P.forgetPasskey(created.credential);
            created = null;
            showAdd("passkey");
          }
          refused(reply);
          break;
        }
        case "app": {
          const reply = await P.api("POST", "/my/totp", {
            registration: form.elements.registration.value,
            code: form.elements.code.value.trim(),
            displayName: form.elements.displayName.value.trim() || "Authenticator app",
          });
          if (reply.ok) done("app"); else refused(reply);
          break;
        }
        case "password": {
          if (form.elements.newPassword.value !== form.elements.confirmPassword.value) {
            fail("The new passwords don't match.");
            return;
          }
          const reply = await P.api("POST", "/my/password", {
            currentPassword: form.elements.currentPassword.value,
            newPassword: form.elements.newPassword.value,
          });
          if (reply.ok) done("password"); else refused(reply);
          break;
        }
        case "rename": {
          const row = form.closest("tr[data-method-id]");
          const reply = await P.api("PATCH", "/my/passkeys/" + encodeURIComponent(row.dataset.methodId), {
            displayName: form.elements.displayName.value.trim(),
          });
          if (reply.ok) done("renamed"); else refused(reply);
          break;
        }
      }
    } finally {
      button.disabled = false;
    }
  });
})();
