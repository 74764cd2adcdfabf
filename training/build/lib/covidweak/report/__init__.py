"""Case reports of the batch runner: pictures (:mod:`.figures`), HTML (:mod:`.html`), PNG/PDF (:mod:`.render`)."""
