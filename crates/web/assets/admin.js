// The admin portal's one enhancement: copy buttons for secrets shown once. Without script the
// secret stays selectable text, so nothing depends on this.
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
