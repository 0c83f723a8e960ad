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

// The policy editor's pickers. Without script each chosen value is a ticked checkbox (untick
// to remove) and names typed into the box are looked up by the server; with script the box
// searches the choices, a choice becomes a chip with a Remove button, and nothing else in the
// picker changes — adding never replaces what is already chosen.
(() => {
  const source = document.getElementById("policy-options");
  if (!source) return;
  const options = JSON.parse(source.textContent);
  const live = document.createElement("p");
  live.className = "visually-hidden";
  live.setAttribute("aria-live", "polite");
  live.id = "picker-status";
  document.body.appendChild(live);

  const removeButton = (chip, label) => {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "chip-remove";
    button.textContent = "Remove";
    button.setAttribute("aria-label", `Remove ${label}`);
    button.addEventListener("click", () => {
      const picker = chip.closest(".picker");
      const list = chip.parentElement;
      chip.remove();
      // The section's summary follows (see below): a removal is a change of choice.
      list.dispatchEvent(new Event("change", { bubbles: true }));
      live.textContent = `Removed ${label}.`;
      picker.querySelector("input[type=search]").focus();
    });
    chip.appendChild(button);
  };

  document.querySelectorAll(".picker").forEach((picker) => {
    const name = picker.dataset.picker;
    const list = options[picker.dataset.options] || [];
    const chips = picker.querySelector(".chips");
    const search = picker.querySelector("input[type=search]");
    const results = picker.querySelector(".picker-results");
    picker.classList.add("enhanced");
    // The box searches now; what it holds is not sent.
    search.removeAttribute("name");
    search.setAttribute("role", "combobox");
    search.setAttribute("aria-autocomplete", "list");
    search.setAttribute("aria-expanded", "false");
    search.setAttribute("aria-controls", results.id);
    search.nextElementSibling.textContent = "Type to search, then choose with the arrow keys and Enter, or click.";
    // A chip's checkbox is hidden now and only the Remove button removes it: its label becomes
    // plain text, so a click on the name cannot untick it unseen.
    chips.querySelectorAll(".chip").forEach((chip) => {
      const label = chip.querySelector("label");
      const text = document.createElement("span");
      text.className = "chip-text";
      text.textContent = label.textContent.trim();
      label.replaceWith(text);
      removeButton(chip, text.textContent);
    });

    const chosen = () => new Set([...chips.querySelectorAll("input")].map((i) => i.value.toLowerCase()));
    let active = -1;
    const close = () => {
      results.hidden = true;
      results.replaceChildren();
      search.setAttribute("aria-expanded", "false");
      search.removeAttribute("aria-activedescendant");
      active = -1;
    };
    const add = (value, label) => {
      if (chosen().has(String(value).toLowerCase())) return;
      const chip = document.createElement("li");
      chip.className = "chip";
      chip.dataset.value = value;
      const box = document.createElement("input");
      box.type = "checkbox";
      box.name = name;
      box.value = value;
      box.checked = true;
      box.hidden = true;
      const text = document.createElement("span");
      text.className = "chip-text";
      text.textContent = label;
      chip.append(box, text);
      removeButton(chip, label);
      chips.appendChild(chip);
      chips.dispatchEvent(new Event("change", { bubbles: true }));
      live.textContent = `Added ${label}.`;
      search.value = "";
      close();
      search.focus();
    };
    const show = () => {
      const query = search.value.trim().toLowerCase();
      if (!query) return close();
      const taken = chosen();
      const matches = list
        .filter(([value, label]) => !taken.has(String(value).toLowerCase())
          && (String(label).toLowerCase().includes(query) || String(value).toLowerCase().includes(query)))
        .slice(0, 20);
      results.replaceChildren(...matches.map(([value, label], index) => {
        const item = document.createElement("li");
        item.id = `${name}-result-${index}`;
        item.setAttribute("role", "option");
        item.className = "picker-result";
        item.textContent = label;
        item.dataset.value = value;
        item.addEventListener("mousedown", (event) => event.preventDefault());
        item.addEventListener("click", () => add(value, label));
        return item;
      }));
      if (!matches.length) {
        const none = document.createElement("li");
        none.className = "picker-none";
        none.textContent = "No match.";
        results.appendChild(none);
      }
      results.hidden = false;
      search.setAttribute("aria-expanded", "true");
      active = -1;
    };
    const highlight = (index) => {
      const items = results.querySelectorAll("[role=option]");
      if (!items.length) return;
      active = (index + items.length) % items.length;
      items.forEach((item, i) => item.setAttribute("aria-selected", i === active ? "true" : "false"));
      search.setAttribute("aria-activedescendant", items[active].id);
    };
    search.addEventListener("input", show);
    search.addEventListener("blur", close);
    search.addEventListener("keydown", (event) => {
      if (event.key === "ArrowDown") { event.preventDefault(); if (results.hidden) show(); highlight(active + 1); }
      else if (event.key === "ArrowUp") { event.preventDefault(); highlight(active - 1); }
      else if (event.key === "Escape") { close(); }
      else if (event.key === "Enter") {
        // Enter in the box chooses; it never sends the form.
        event.preventDefault();
        const items = results.querySelectorAll("[role=option]");
        const item = items[active >= 0 ? active : 0];
        if (item) add(item.dataset.value, item.textContent);
      }
    });
  });

  // Ticking a platform or location to include chooses "selected"; choosing "any" clears them,
  // so what the section shows is what is saved.
  const follow = (boxes, select, any) => {
    document.querySelectorAll(`input[name=${boxes}]`).forEach((box) => {
      box.addEventListener("change", () => {
        if (box.checked) document.getElementById(select).checked = true;
      });
    });
    any.forEach((id) => {
      const radio = document.getElementById(id);
      if (radio) radio.addEventListener("change", () => {
        document.querySelectorAll(`input[name=${boxes}]`).forEach((box) => { box.checked = false; });
      });
    });
  };
  follow("includePlatforms", "platformsInclude-select", ["platformsInclude-all"]);
  follow("includeLocations", "locationsInclude-select", ["locationsInclude-All", "locationsInclude-AllTrusted"]);
})();
// The policy editor's section summaries, kept up to date as choices change. The words are
// those of the server's `PolicyForm::summaries` (crates/web/src/pages/admin/policy_form.rs),
// which renders them on load and stays the source of truth: change one, change both (the
// browser test editor_live compares them after a save). Only a section whose choices changed
// is rewritten, and text boxes are read when the person pauses, so the polite announcement
// says each new summary once rather than at every key.
(() => {
  const form = document.getElementById("policy-form");
  const source = document.getElementById("policy-options");
  if (!form || !source) return;
  const options = JSON.parse(source.textContent);
  const pairs = (key) => new Map((options[key] || []).map(([value, label]) => [String(value), String(label)]));
  const platforms = pairs("platforms");
  const clientApps = pairs("clientApps");
  const userActions = pairs("userActions");
  const strengths = pairs("strengths");

  const radio = (name) => form.querySelector(`input[name="${name}"]:checked`)?.value ?? "";
  const ticked = (name) => [...form.querySelectorAll(`input[name="${name}"]:checked`)].map((i) => i.value);
  const value = (name) => form.elements[name]?.value ?? "";
  const checked = (name) => !!form.elements[name]?.checked;
  const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;
  const labels = (values, names) => values.map((v) => names.get(v) ?? v).join(", ");
  const counted = (side) => {
    const parts = [];
    const users = ticked(`${side}Users`).length;
    const groups = ticked(`${side}Groups`).length;
    const roles = ticked(`${side}Roles`).length;
    if (users) parts.push(plural(users, "user", "users"));
    if (groups) parts.push(plural(groups, "group", "groups"));
    if (roles) parts.push(plural(roles, "role", "roles"));
    return parts;
  };
  // The box that takes one entry per line (commas also separate), as the server reads it.
  const entries = (text) => text.split(/[\n,]/).map((e) => e.trim()).filter(Boolean);

  const summaries = {
    users: () => {
      let users;
      switch (radio("usersInclude")) {
        case "all": users = "All users"; break;
        case "none": users = "None"; break;
        default: {
          const included = counted("include");
          users = included.length ? `${included.join(", ")} included` : "Nothing selected yet";
        }
      }
      const excluded = counted("exclude");
      return excluded.length ? `${users}; ${excluded.join(", ")} excluded` : users;
    },
    target: () => {
      switch (radio("target")) {
        case "userAction": return `User action: ${userActions.get(value("userAction")) ?? "none chosen"}`;
        case "authenticationContext": return `Authentication context: ${entries(value("authenticationContexts")).join(", ")}`;
        default: {
          const include = { all: "All resources", none: "None" }[radio("appsInclude")]
            ?? `${plural(ticked("includeApplications").length, "application", "applications")} included`;
          const excluded = ticked("excludeApplications").length;
          return excluded ? `${include}; ${plural(excluded, "application", "applications")} excluded` : include;
        }
      }
    },
    platforms: () => {
      const include = ticked("includePlatforms");
      const chosen = include.length ? "select" : (radio("platformsInclude") || "all");
      const words = chosen === "select" ? labels(include, platforms) : "Any device";
      const exclude = ticked("excludePlatforms");
      return exclude.length ? `${words} except ${labels(exclude, platforms)}` : words;
    },
    locations: () => {
      const include = ticked("includeLocations");
      const chosen = include.length ? "select" : (radio("locationsInclude") || "All");
      const words = chosen === "AllTrusted" ? "All trusted networks and locations"
        : chosen === "select" ? plural(include.length, "named location", "named locations")
        : "Any network or location";
      const excluded = ticked("excludeLocations").length;
      return excluded ? `${words}; ${plural(excluded, "location", "locations")} excluded` : words;
    },
    "client-apps": () => {
      const apps = ticked("clientAppTypes");
      return apps.length ? labels(apps, clientApps) : "Any client app";
    },
    grant: () => {
      switch (radio("grant")) {
        case "block": return "Block access";
        case "none": return "No grant controls";
        default: {
          const parts = [];
          if (checked("requireMfa")) parts.push("multifactor authentication");
          const strength = value("authenticationStrength");
          if (strength) parts.push(`authentication strength ${strengths.get(strength) ?? strength}`);
          if (!parts.length) return "Grant access";
          return `Require ${parts.join(radio("operator") === "AND" ? " and " : " or ")}`;
        }
      }
    },
    session: () => {
      const parts = [];
      if (checked("signInFrequency")) {
        parts.push(radio("signInFrequencyInterval") === "everyTime"
          ? "Sign-in frequency: every time"
          : `Sign-in frequency: every ${value("signInFrequencyValue")} ${value("signInFrequencyUnit")}`);
      }
      if (checked("persistentBrowser")) parts.push(`Persistent browser: ${value("persistentBrowserMode")}`);
      return parts.length ? parts.join("; ") : "None";
    },
  };

  const refresh = (section) => {
    const id = section?.id?.replace(/^section-/, "");
    const target = id && summaries[id] && document.querySelector(`[data-live-summary="${id}"]`);
    if (!target) return;
    const words = summaries[id]();
    if (target.textContent === words) return;
    target.textContent = words;
    // A brief highlight shows where the words changed (none when motion is reduced: see
    // admin.css).
    target.classList.remove("summary-changed");
    void target.offsetWidth;
    target.classList.add("summary-changed");
  };
  let pause;
  form.addEventListener("change", (event) => {
    if (event.target.matches("input[type=search]")) return;
    refresh(event.target.closest("details.section"));
  });
  form.addEventListener("input", (event) => {
    // Typed text (the frequency, the contexts): once the person pauses. A picker's search box
    // changes no choice and is never read.
    if (!event.target.matches("input[type=text], input[type=number], input:not([type])")) return;
    clearTimeout(pause);
    pause = setTimeout(() => refresh(event.target.closest("details.section")), 600);
  });
  // Radios and boxes set by another choice (ticking a platform chooses "Selected platforms")
  // send no event of their own; the section is read whole on every change, so they count.
})();

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
