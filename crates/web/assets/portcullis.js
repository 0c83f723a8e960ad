// Small enhancements shared by every page; pages that need WebAuthn add their own code.
