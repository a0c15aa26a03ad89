// The anywidget entry point.

function hideFallback(key) {
  // the static copy printed before the widget (for nbconvert, GitHub): not needed once the widget is drawn
  if (!/^[0-9a-f]+$/.test(key || "")) return;
  let tries = 0;
  const look = () => {
    const found = document.querySelectorAll(".nbcount-key-" + key);
    found.forEach((node) => {
      const area = node.closest(".jp-OutputArea-child") || node;
      area.style.display = "none";
    });
    if (!found.length && tries++ < 20) setTimeout(look, 150);
  };
  look();
}

function render({ model, el }) {
  const view = new View(model, el);
  hideFallback(view.data.key);
  return () => view.destroy();
}

export default { render };
