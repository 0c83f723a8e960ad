// The admin portal's enhancements: the header's Sign out, copy buttons for secrets shown once, and
// focus on a form's error summary. Without script the secret stays selectable text.
document.querySelectorAll("button[data-copy]").forEach((button) => {
  button.addEventListener("click", async () => {
    const source = document.querySelector(button.dataset.copy);
    const status = document.getElementById("copy-status");
    try {
      await navigator.clipboard.writeText(source.textContent.trim());
      if (status) status.textContent = "Copied.";
    } catch {
      // Clipboard access can be refused (an insecure origin, a browser setting): select the
      // text instead, so the person can copy it by hand.
      const range = document.createRange();
      range.selectNodeContents(source);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      if (status) status.textContent = "Selected: press Ctrl+C or ⌘C to copy.";
    }
  });
});

// Sign out from the header: the session ends on the server, then the sign-in page, which brings
// the person back to the portal.
document.querySelectorAll("[data-action=portal-sign-out]").forEach((button) => {
  button.addEventListener("click", async () => {
    button.disabled = true;
    await window.Portcullis.api("POST", "/auth/sign-out");
    location.assign("/signin?returnTo=/admin");
  });
});

// A form answered with errors: the summary at its top takes the focus (and scrolls into view),
// so the person hears and sees what to fix; its links move to each field.
const summary = document.getElementById("error-summary");
if (summary) {
  summary.focus();
  summary.querySelectorAll("a[href^='#']").forEach((link) => {
    link.addEventListener("click", (event) => {
      const field = document.getElementById(link.getAttribute("href").slice(1));
      if (!field) return;
      event.preventDefault();
      field.focus();
    });
  });
}
