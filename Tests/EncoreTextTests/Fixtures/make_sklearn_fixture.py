"""Writes sklearn_tfidf.json: scikit-learn's tokens, vocabularies, idf and TF-IDF rows for a small corpus.

Run once (scikit-learn from PyPI in a venv):  python make_sklearn_fixture.py
The Swift tests (EncoreTextTests) compare EncoreText's tokenizer and TfidfVectorizer port with these values.
"""
import json
import numpy as np
import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer, CountVectorizer, ENGLISH_STOP_WORDS

corpus = [
    "The quick brown fox jumps over the lazy dog.",
    "The dog barks; the fox runs. A fox, a dog, and the moon!",
    "Café société: crème brûlée is served at the café in Zürich.",
    "ΟΔΥΣΣΕΥΣ sailed home. Σίσυφος pushes a rock; ΣΟΦΟΣ is wise.",
    "snake_case and camelCase identifiers, v2 and 3rd, x 42 7",
    "音楽 の 世界 and 音楽 again; ½ and ٣٤ numerals",
    "Combining: cafe\u0301 and naïve and İstanbul",
    "the the the fox fox dog it is what it is",
    "Jazz bass, jazz drums, jazz piano; smooth jazz and free jazz.",
    "Rock guitar and rock drums: rock is loud, the guitar is louder.",
]

configs = {
    "default": dict(),
    "stop_bigrams_sublinear": dict(stop_words="english", ngram_range=(1, 2), sublinear_tf=True),
    "filtered": dict(min_df=2, max_df=0.5),
    "max_features": dict(max_features=6),
    "proportions": dict(min_df=0.15, max_df=0.9, ngram_range=(1, 2)),
}

out = {"sklearn_version": sklearn.__version__, "corpus": corpus, "tokens": [], "configs": {}}
analyzer = CountVectorizer().build_analyzer()
out["tokens"] = [analyzer(d) for d in corpus]
for name, params in configs.items():
    v = TfidfVectorizer(**params)
    x = v.fit_transform(corpus)
    terms = v.get_feature_names_out().tolist()
    counts = CountVectorizer(vocabulary=v.vocabulary_, ngram_range=params.get("ngram_range", (1, 1)),
                             stop_words=params.get("stop_words")).fit_transform(corpus)
    df = np.asarray((counts > 0).sum(axis=0)).ravel().tolist()
    out["configs"][name] = {
        "params": {k: (list(val) if isinstance(val, tuple) else val) for k, val in params.items()},
        "terms": terms,
        "document_frequency": [int(f) for f in df],
        "idf": v.idf_.tolist(),
        "rows": [[[int(j), float(val)] for j, val in zip(x[r].indices.tolist(), x[r].data.tolist())] for r in range(x.shape[0])],
    }

with open("sklearn_tfidf.json", "w", encoding="utf-8") as f:
    json.dump(out, f, ensure_ascii=False, indent=0)
print("wrote sklearn_tfidf.json with", {k: len(v["terms"]) for k, v in out["configs"].items()})
