"""Understanding what people write: a model trained on the knowledge base's own phrasings.

- `samples`: the training data (every phrasing of every entry, plus off-topic messages).
- `features`: how text becomes tokens for the models (normalisation, chat abbreviations).
- `rankers`: three rankers over the same data (a logistic regression on character and word
  n-grams, BM25, nearest phrasing).
- `decision`: a calibrated model that fuses the rankers and says how sure it is, with thresholds
  chosen by cross-validation on the training data.
- `segments`: sentences of long messages; `urgency`: danger-now messages.
- `model`: builds all of it, cached by the knowledge base's content.
"""
