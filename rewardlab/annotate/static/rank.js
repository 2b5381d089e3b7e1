// Ranking by drag, buttons or keyboard for rewardlab annotate. The form's <select name="rank_D">
// fields are the source of truth the server reads; this script keeps them in step with the card
// order (best first). Without JavaScript the selects alone still work.
"use strict";
(function () {
  const list = document.getElementById("ranking");
  if (!list) return;
  const allowTies = list.dataset.allowTies === "1";
  const cards = () => Array.from(list.querySelectorAll(".card"));
  const select = (card) => card.querySelector("select");

  // Ranks from the card order: competition ranks; a card marked "tie" shares the rank above it.
  function syncFromOrder() {
    let rank = 0;
    cards().forEach((card, idx) => {
      const tie = allowTies && idx > 0 && card.dataset.tie === "1";
      card.dataset.tie = tie ? "1" : "0";
      if (!tie) rank = idx + 1;
      select(card).value = String(rank);
      const button = card.querySelector(".tie");
      if (button) button.setAttribute("aria-pressed", tie ? "true" : "false");
    });
  }

  // Card order from the selects, once every response has a rank.
  function syncFromSelects() {
    const all = cards();
    if (all.some((c) => select(c).value === "")) return;
    all.sort((a, b) => Number(select(a).value) - Number(select(b).value));
    all.forEach((card, idx) => {
      card.dataset.tie = idx > 0 && select(card).value === select(all[idx - 1]).value ? "1" : "0";
      list.appendChild(card);
    });
    syncFromOrder();
  }

  function move(card, delta) {
    const all = cards();
    const target = all.indexOf(card) + delta;
    if (target < 0 || target >= all.length) return;
    if (delta < 0) list.insertBefore(card, all[target]);
    else list.insertBefore(card, all[target].nextSibling);
    card.dataset.tie = "0";
    syncFromOrder();
    card.focus();
  }

  function toggleTie(card) {
    if (!allowTies) return;
    card.dataset.tie = card.dataset.tie === "1" ? "0" : "1";
    syncFromOrder();
  }

  list.addEventListener("click", (event) => {
    const card = event.target.closest(".card");
    if (!card) return;
    if (event.target.matches(".up")) move(card, -1);
    else if (event.target.matches(".down")) move(card, +1);
    else if (event.target.matches(".tie")) toggleTie(card);
  });
  list.addEventListener("change", (event) => {
    if (event.target.matches("select")) syncFromSelects();
  });
  list.addEventListener("keydown", (event) => {
    const card = event.target;
    if (!card.classList || !card.classList.contains("card")) return;
    if (event.key === "ArrowUp") move(card, -1);
    else if (event.key === "ArrowDown") move(card, +1);
    else if (event.key === "t") toggleTie(card);
    else return;
    event.preventDefault();
  });

  let dragged = null;
  list.addEventListener("dragstart", (event) => {
    dragged = event.target.closest(".card");
    if (!dragged) return;
    dragged.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", dragged.dataset.pos);
  });
  list.addEventListener("dragover", (event) => {
    if (!dragged) return;
    event.preventDefault();
    const after = cards().find((c) => c !== dragged && event.clientY < c.getBoundingClientRect().top + c.offsetHeight / 2);
    list.insertBefore(dragged, after || null);
  });
  list.addEventListener("dragend", () => {
    if (!dragged) return;
    dragged.classList.remove("dragging");
    dragged.dataset.tie = "0";
    dragged = null;
    syncFromOrder();
  });

  if (cards().every((c) => select(c).value !== "")) syncFromSelects();  // a revisited, ranked task
})();
