// The artifact test: images at one image pixel per device pixel; ← and → answer.
const dpr = window.devicePixelRatio || 1;
document.querySelectorAll("[data-pixel-exact]").forEach((img) => {
  img.style.width = `${img.naturalWidth ? img.naturalWidth / dpr : 256 / dpr}px`;
  img.addEventListener("load", () => {
    img.style.width = `${img.naturalWidth / dpr}px`;
  });
});
const buttons = { ArrowLeft: "answer-left", ArrowRight: "answer-right" };
document.addEventListener("keydown", (event) => {
  const id = buttons[event.key];
  if (id) {
    event.preventDefault();
    document.getElementById(id).click();
  }
});
