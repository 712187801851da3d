// The New video form: prompt, model and reference image, checked here
// first, then by the server, whose field errors show next to the fields.

import { APIError, VIDEO_COST, generateVideo } from "./api.js";
import { byId } from "./dom.js";

// The server's limits, counted as it does: in code points after trimming.
const MIN_PROMPT = 10;
const MAX_PROMPT = 2000;

/** Code points, as the server counts characters (not UTF-16 units). */
const length = (s) => [...s].length;

/**
 * Wires the form. onCreated(video) runs after a 201; freshCredits()
 * resolves to the balance, fetched again, for the message when it is too
 * low.
 */
export function setupGenerateForm({ onCreated, freshCredits }) {
  const form = byId("generate-form");
  const prompt = byId("prompt");
  const count = byId("prompt-count");
  const button = byId("generate-button");
  const formError = byId("generate-error");
  const fieldErrors = [...form.querySelectorAll(".field-error")];
  byId("generate-cost").textContent = `· ${VIDEO_COST} credits`;

  const showCount = () => {
    const n = length(prompt.value.trim());
    count.textContent = `${n} / ${MAX_PROMPT}`;
    count.classList.toggle("over", n > MAX_PROMPT);
  };

  const setFieldError = (field, message) => {
    const node = form.querySelector(`.field-error[data-field="${field}"]`);
    if (!node) return false;
    node.textContent = message;
    if (field === "prompt") prompt.setAttribute("aria-invalid", message ? "true" : "false");
    return true;
  };

  const clearErrors = () => {
    for (const node of fieldErrors) setFieldError(node.dataset.field, "");
    formError.textContent = "";
  };

  prompt.addEventListener("input", () => {
    showCount();
    setFieldError("prompt", "");
  });
  prompt.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  // Enter on a radio button would submit the form (the browser's implicit
  // submission) and spend credits: on the model and image choices it picks
  // the focused option instead, and only the Generate button (or
  // Ctrl+Enter in the prompt) generates.
  // Chromium submits on the keypress that follows the keydown, which a
  // cancelled keydown normally suppresses; both are caught, for browsers
  // and tools that send it anyway.
  const pickOnEnter = (e) => {
    if (e.key !== "Enter" || e.target.type !== "radio") return;
    e.preventDefault();
    if (!e.target.checked) {
      e.target.checked = true;
      e.target.dispatchEvent(new Event("change", { bubbles: true }));
    }
  };
  form.addEventListener("keydown", pickOnEnter);
  form.addEventListener("keypress", pickOnEnter);
  form.addEventListener("change", () => {
    setFieldError("model", "");
    setFieldError("reference_image_url", "");
  });

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (button.disabled) return;
    clearErrors();
    const data = new FormData(form);
    const text = String(data.get("prompt")).trim();
    const n = length(text);
    if (n < MIN_PROMPT || n > MAX_PROMPT) {
      setFieldError("prompt", n < MIN_PROMPT
        ? `Describe the video in at least ${MIN_PROMPT} characters (${n} so far).`
        : `Keep the prompt to ${MAX_PROMPT} characters at most (${n} now).`);
      prompt.focus();
      return;
    }
    const body = { prompt: text, model: String(data.get("model")) };
    const reference = String(data.get("reference") ?? "");
    // The API wants an absolute http(s) URL; the trial images are ours.
    if (reference) body.reference_image_url = new URL(reference, window.location.origin).href;

    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    const label = button.firstChild.textContent;
    button.firstChild.textContent = "Starting… ";
    try {
      const video = await generateVideo(body);
      onCreated(video);
    } catch (err) {
      await showError(err);
    } finally {
      button.disabled = false;
      button.removeAttribute("aria-busy");
      button.firstChild.textContent = label;
      // Disabling the focused button dropped the focus; give it back
      // unless the page moved it on (to the new video).
      if (document.activeElement === document.body) button.focus();
    }
  });

  async function showError(err) {
    if (!(err instanceof APIError)) throw err;
    switch (err.status) {
      case 422: {
        const unplaced = Object.entries(err.fields).filter(([field, msg]) => !setFieldError(field, `This ${fieldName(field)} ${msg}.`));
        formError.textContent = unplaced.length ? unplaced.map(([f, m]) => `${f} ${m}`).join("; ") : "Please fix the fields marked above.";
        break;
      }
      case 402: // insufficient_credits
        formError.textContent = `Not enough credits: a video costs ${VIDEO_COST} and you have ${await freshCredits()}. Top up and try again.`;
        break;
      case 403: // subscription_inactive
        formError.textContent = "Your subscription is inactive, so you cannot generate videos. Renew it, then try again.";
        break;
      case 401:
        break; // the sign-in form takes over
      default:
        formError.textContent = `The video could not be started: ${err.message}`;
    }
  }

  showCount();
}

function fieldName(field) {
  return { prompt: "prompt", model: "model", reference_image_url: "image URL" }[field] ?? field;
}
