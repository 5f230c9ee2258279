// Fills the display-check form with what the browser knows about its display.
// The server decides whether the study's images fit (screening/rules.py).

const form = document.querySelector("[data-display-check]");

function metrics() {
  return {
    device_pixel_ratio: window.devicePixelRatio || 1,
    viewport_width: document.documentElement.clientWidth || window.innerWidth,
    viewport_height: window.innerHeight,
    screen_width: window.screen.width,
    screen_height: window.screen.height,
    color_depth: window.screen.colorDepth,
    // Browser zoom changes outerWidth / innerWidth; an estimate, recorded only.
    zoom: window.outerWidth && window.innerWidth ? Math.round((100 * window.outerWidth) / window.innerWidth) / 100 : "",
  };
}

form.addEventListener("submit", () => {
  const values = metrics();
  form.querySelectorAll("[data-metric]").forEach((input) => {
    input.value = values[input.dataset.metric];
  });
});
