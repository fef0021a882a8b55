// New job and review pages (FR1.1.2-FR1.3.2). The server computes every figure: this script only
// asks /jobs/new/estimate for the cost panel after a change and copies the returned figures into
// the cards. Without it the form still works (the "Update estimate" button re-renders the page).
(function () {
  'use strict';

  function figuresOf(root) {
    var block = root.querySelector('#nj-figures');
    if (!block) return null;
    try { return JSON.parse(block.textContent); } catch (e) { return null; }
  }

  function lookup(figures, path) {
    var parts = path.split('.');
    if (parts[0] === 'preset') return (figures.presets[parts[1]] || {})[parts[2]];
    return (figures[parts[0]] || {})[parts[1]];
  }

  function setupNewJob(form) {
    var panel = document.getElementById('cost-panel');
    var limitBox = document.getElementById('nj-limit');
    var nameInput = document.getElementById('nj-name');
    var nameDefault = document.getElementById('nj-name-default');
    var confirmInput = document.getElementById('nj-confirm-on-demand');
    var dialog = document.getElementById('nj-confirm-dialog');
    var figures = figuresOf(panel);
    var timer = null;
    var pending = null;
    var lastTier = checkedValue('gpu_tier') || 'spot';

    form.querySelectorAll('.nj-nojs').forEach(function (el) { el.hidden = true; });
    form.querySelectorAll('.nj-filter').forEach(function (el) { el.hidden = false; });

    function checkedValue(name) {
      var input = form.querySelector('input[name="' + name + '"]:checked');
      return input ? input.value : '';
    }

    function applyFigures() {
      figures = figuresOf(panel);
      if (!figures) return;
      form.querySelectorAll('[data-figure]').forEach(function (el) {
        var value = lookup(figures, el.getAttribute('data-figure'));
        if (value !== undefined && value !== null) el.textContent = value;
      });
      form.querySelectorAll('[data-width]').forEach(function (el) {
        var value = lookup(figures, el.getAttribute('data-width'));
        if (value !== undefined) el.style.width = value + '%';
      });
      var selectedLocked = false;
      form.querySelectorAll('[data-preset]').forEach(function (card) {
        var info = figures.presets[card.getAttribute('data-preset')] || {};
        var radio = card.querySelector('input[type=radio]');
        card.querySelector('[data-recommended]').hidden = !info.recommended;
        card.querySelector('[data-locked]').hidden = !!info.unlocked;
        card.classList.toggle('nj-locked', !info.unlocked);
        radio.disabled = !info.unlocked;
        if (radio.checked && !info.unlocked) selectedLocked = true;
      });
      if (nameInput && nameDefault && figures.name_default &&
          (nameInput.value === nameDefault.value || nameInput.value === '')) {
        nameInput.value = figures.name_default;
        nameInput.dispatchEvent(new Event('input'));
      }
      if (nameDefault && figures.name_default) {
        if (nameInput.value === figures.name_default) nameDefault.value = figures.name_default;
      }
      var body = panel.querySelector('[data-blocked]');
      if (limitBox) limitBox.hidden = !(body && body.getAttribute('data-blocked') === 'true') && !limitBox.open;
      if (selectedLocked) {
        Object.keys(figures.presets).some(function (name) {
          if (!figures.presets[name].recommended) return false;
          var radio = form.querySelector('input[name=preset][value="' + name + '"]');
          radio.checked = true;
          schedule();
          return true;
        });
      }
    }

    function refresh() {
      var params = new URLSearchParams();
      ['training_file_id', 'preset', 'gpu_tier'].forEach(function (name) { params.set(name, checkedValue(name)); });
      var jobId = form.querySelector('input[name=job_id]');
      if (jobId) params.set('job_id', jobId.value);
      var body = panel.querySelector('[data-total]');
      if (body) params.set('previous_total', body.getAttribute('data-total'));
      if (pending) pending.abort();
      pending = new AbortController();
      fetch(form.getAttribute('data-estimate-url') + '?' + params.toString(),
            {headers: {'Accept': '*/*'}, signal: pending.signal, credentials: 'same-origin'})
        .then(function (response) { return response.text(); })
        .then(function (html) { panel.innerHTML = html; applyFigures(); })
        .catch(function () { /* a newer request replaced this one, or offline: keep the last panel */ });
    }

    function schedule() {
      clearTimeout(timer);
      timer = setTimeout(refresh, 120);
    }

    function askOnDemand() {
      var confirmation = figures && figures.tiers && figures.tiers.confirmation;
      if (!confirmation || !dialog || typeof dialog.showModal !== 'function') return false;
      document.getElementById('nj-dialog-text').textContent = confirmation.message;
      var buttons = dialog.querySelectorAll('[data-choice]');
      buttons[0].textContent = confirmation.actions[0];
      buttons[1].textContent = confirmation.actions[1];
      buttons[2].textContent = confirmation.actions[2];
      dialog.showModal();
      return true;
    }

    if (dialog) {
      dialog.addEventListener('cancel', function (event) { event.preventDefault(); });
      dialog.querySelectorAll('[data-choice]').forEach(function (button) {
        button.addEventListener('click', function () {
          var choice = button.getAttribute('data-choice');
          var tier = choice === 'on_demand' ? 'on_demand' : choice === 'spot' ? 'spot' : lastTier;
          if (choice === 'on_demand') confirmInput.value = '1';
          form.querySelector('input[name=gpu_tier][value="' + tier + '"]').checked = true;
          lastTier = tier;
          dialog.close();
          schedule();
        });
      });
    }

    form.addEventListener('change', function (event) {
      var name = event.target.name;
      if (name === 'gpu_tier') {
        if (event.target.value === 'on_demand' && confirmInput.value !== '1' && askOnDemand()) return;
        lastTier = event.target.value;
      }
      if (name === 'training_file_id' || name === 'preset') confirmInput.value = '';
      if (name === 'training_file_id' || name === 'preset' || name === 'gpu_tier') schedule();
    });

    var filter = document.getElementById('nj-file-filter');
    if (filter) {
      filter.addEventListener('input', function () {
        var words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
        form.querySelectorAll('.nj-file').forEach(function (card) {
          var text = card.getAttribute('data-search');
          card.hidden = !words.every(function (w) { return text.indexOf(w) >= 0; });
        });
      });
    }

    form.querySelectorAll('[data-counter]').forEach(function (input) {
      var counter = form.querySelector('[data-counter-for="' + input.id + '"]');
      var max = input.getAttribute('data-counter');
      if (!counter) return;
      input.addEventListener('input', function () { counter.textContent = input.value.length + '/' + max; });
    });

    // FR1.3.1: draft notes survive a closed tab (saved every 30 s, dropped once the form is sent).
    form.querySelectorAll('[data-draft]').forEach(function (area) {
      var key = 'lora-pipeline:' + area.getAttribute('data-draft');
      try {
        if (!area.value && window.localStorage.getItem(key)) area.value = window.localStorage.getItem(key);
        setInterval(function () { window.localStorage.setItem(key, area.value); }, 30000);
        form.addEventListener('submit', function () { window.localStorage.removeItem(key); });
      } catch (e) { /* storage disabled */ }
    });

    if (limitBox) limitBox.addEventListener('toggle', function () { if (limitBox.open) limitBox.hidden = false; });
    applyFigures();
  }

  function setupReview(form) {
    var start = form.querySelector('[data-needs-checklist]');
    if (!start) return;  // over budget without an override: Start stays disabled, with the reason beside it
    var boxes = form.querySelectorAll('.rv-check input[type=checkbox]');
    function update() {
      start.disabled = !Array.prototype.every.call(boxes, function (box) { return box.checked; });
    }
    boxes.forEach(function (box) { box.addEventListener('change', update); });
    update();
  }

  document.addEventListener('DOMContentLoaded', function () {
    var form = document.getElementById('new-job-form');
    if (form) setupNewJob(form);
    var review = document.getElementById('rv-start-form');
    if (review) setupReview(review);
  });
}());
