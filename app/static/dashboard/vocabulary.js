// What the service defines once in Python (app/vocabulary.py, app/api/params.py) and every page
// carries as JSON in its body's data-vocabulary (base.html, app/api/routes/pages.py): the run
// statuses, the architectures, the labels' colours and the field's ramp, the largest page of a
// list.

const VOCABULARY = JSON.parse(document.body.dataset.vocabulary);

export const STATUSES = VOCABULARY.statuses;
// The statuses of a run that has ended: nothing about it changes any more.
export const ENDED = new Set(VOCABULARY.ended);
export const ARCHITECTURES = VOCABULARY.architectures;
// Label 0's and label 1's colours, as "#rrggbb".
export const LABEL_COLOURS = VOCABULARY.label_colours;
// P = 0, 0.5 and 1 on the probability field's ramp, as "#rrggbb".
export const FIELD_RAMP = VOCABULARY.field_ramp;
export const MAX_PAGE_SIZE = VOCABULARY.max_page_size;
