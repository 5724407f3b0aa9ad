"""A constructed word-embedding table with planted structure: bias, analogies, variants, similarity.

Real embedding tables (word2vec, GloVe) cannot be downloaded here, and their
"true" biases and relations are unknown anyway.  :func:`planted_embeddings`
builds a table of plausible English words whose geometry is known exactly, so
that the evaluation and bias probes of :mod:`mmalign.evaluation` can be tested
against ground truth.

How the vectors are made
------------------------
Every word is ``topic centre + word-specific latent + noise`` (random Gaussian
vectors, norms about ``1``, ``0.8`` and ``noise``), with these planted parts:

* a **gender axis** ``g`` (unit vector; ``direction`` in the result).  Every
  random part is orthogonal to ``g``: the only components along ``g`` are the
  planted ones.
* **gendered pairs** (``he``/``she``, ``king``/``queen``, ...): a shared base
  ``± 0.6 g``; **names** (``john``, ``amy``, ...): ``± 0.5 g``.  These are
  definitional and do not depend on ``bias_strength``.
* **career / family target words** (Caliskan et al.'s WEAT 6 sets): career
  words get ``+bias_strength · g`` and family words ``-bias_strength · g``.
  The *i*-th career and *i*-th family word are built to have the same norm and
  the same component inside the span of the names, so with
  ``bias_strength=0`` (the **control**) every career word has exactly the same
  cosine to every name as its family partner: the WEAT effect of career vs
  family with male vs female names is 0 up to rounding.
* **occupations**: eight lean male (``+bias_strength · g``: engineer,
  programmer, ...), eight lean female (``-bias_strength · g``: nurse,
  receptionist, ...), eight do not lean.
* **analogy relations**: country → capital, singular → plural, verb → past
  tense each add one fixed offset vector (norm 0.8) plus a small per-word
  deviation (norm 0.15); the gendered pairs form a fourth relation (offset
  ``-1.2 g``).
* **spelling variants** (``color``/``colour``, ...): the variant has the same
  latent as its base word and only its own noise, so it lies very close.
* a **human-similarity list**: word pairs scored ``10 · (cos + 1) / 2`` of
  their *latent* vectors (without the noise and without the planted bias),
  plus Gaussian rating noise (sd 0.5), clipped to ``[0, 10]``: Spearman's
  correlation with the table's cosines is high but below 1.
* **filler** words from 14 everyday topics (food, animals, body, music, ...)
  complete the vocabulary to ``n_words``.
"""

from __future__ import annotations

import itertools
import numbers
from dataclasses import dataclass, field

import numpy as np

from ..utils.embedding_table import EmbeddingTable

__all__ = [
    "PlantedEmbeddings",
    "planted_embeddings",
    "GENDER_PAIRS",
    "MALE_NAMES",
    "FEMALE_NAMES",
    "CAREER_WORDS",
    "FAMILY_WORDS",
    "PLANTED_N_WORDS_RANGE",
]

GENDER_PAIRS = (
    ("he", "she"), ("man", "woman"), ("king", "queen"), ("boy", "girl"),
    ("father", "mother"), ("son", "daughter"), ("brother", "sister"), ("husband", "wife"),
    ("uncle", "aunt"), ("nephew", "niece"), ("prince", "princess"), ("actor", "actress"),
    ("gentleman", "lady"), ("male", "female"), ("his", "her"), ("himself", "herself"),
)
# Caliskan et al. (2017), WEAT 6: career vs family with male vs female names.
MALE_NAMES = ("john", "paul", "mike", "kevin", "steve", "greg", "jeff", "bill")
FEMALE_NAMES = ("amy", "joan", "lisa", "sarah", "diana", "kate", "ann", "donna")
CAREER_WORDS = ("executive", "management", "professional", "corporation", "salary", "office",
                "business", "career")
FAMILY_WORDS = ("home", "parents", "children", "family", "cousins", "marriage", "wedding",
                "relatives")
_MALE_OCCUPATIONS = ("engineer", "programmer", "carpenter", "mechanic", "pilot", "surgeon",
                     "architect", "plumber")
_FEMALE_OCCUPATIONS = ("nurse", "receptionist", "homemaker", "librarian", "hairdresser",
                       "secretary", "nanny", "dancer")
_NEUTRAL_OCCUPATIONS = ("doctor", "teacher", "lawyer", "writer", "scientist", "chef", "farmer",
                        "artist")
_CAPITALS = (
    ("france", "paris"), ("germany", "berlin"), ("italy", "rome"), ("spain", "madrid"),
    ("japan", "tokyo"), ("china", "beijing"), ("russia", "moscow"), ("egypt", "cairo"),
    ("greece", "athens"), ("canada", "ottawa"), ("kenya", "nairobi"), ("peru", "lima"),
    ("cuba", "havana"), ("norway", "oslo"), ("sweden", "stockholm"), ("poland", "warsaw"),
    ("portugal", "lisbon"), ("austria", "vienna"), ("ireland", "dublin"), ("turkey", "ankara"),
)
_PLURALS = tuple((w, w + "s") for w in (
    "cat", "dog", "car", "house", "tree", "book", "bird", "horse", "apple", "river", "table",
    "window", "flower", "star", "boat", "chair", "bottle", "garden", "road", "cloud"))
_PAST_TENSE = (
    ("walk", "walked"), ("jump", "jumped"), ("play", "played"), ("talk", "talked"),
    ("open", "opened"), ("climb", "climbed"), ("paint", "painted"), ("cook", "cooked"),
    ("laugh", "laughed"), ("watch", "watched"), ("clean", "cleaned"), ("visit", "visited"),
    ("listen", "listened"), ("answer", "answered"), ("travel", "traveled"), ("dance", "danced"),
)
_SPELLING = (
    ("color", "colour"), ("honor", "honour"), ("favor", "favour"), ("center", "centre"),
    ("theater", "theatre"), ("organize", "organise"), ("realize", "realise"), ("gray", "grey"),
    ("labor", "labour"), ("neighbor", "neighbour"), ("defense", "defence"),
    ("catalog", "catalogue"), ("analyze", "analyse"), ("traveler", "traveller"),
    ("jewelry", "jewellery"), ("fiber", "fibre"),
)
_FILLER = {
    "food": "bread cheese butter rice soup salad pasta sugar honey milk coffee tea pepper onion "
            "potato tomato lemon meat fish cake",
    "animals": "lion tiger wolf bear fox rabbit mouse deer sheep goat cow pig duck eagle snake "
               "frog whale shark monkey owl",
    "nature": "rain snow wind storm sun moon ocean mountain forest desert island valley lake hill "
              "beach stone sand fire ice sky",
    "body": "hand foot head eye ear nose mouth arm leg heart blood bone skin hair finger shoulder "
            "knee tooth brain neck",
    "household": "hammer knife spoon fork plate cup bowl bed door wall floor roof lamp mirror "
                 "clock key box bag rope brush",
    "emotions": "happy sad angry afraid calm proud lonely excited nervous gentle brave quiet "
                "cheerful anxious grateful jealous bored curious tired glad",
    "sports": "soccer tennis golf baseball hockey rugby boxing swimming cycling skiing running "
              "racing football basketball cricket volleyball wrestling sailing surfing rowing",
    "music": "piano guitar violin drum flute trumpet song melody rhythm concert orchestra choir "
             "opera jazz harmony singer chorus ballad tune band",
    "science": "physics chemistry biology atom energy molecule theory experiment laboratory "
               "equation gravity electron formula data research evidence microscope telescope "
               "planet galaxy",
    "clothing": "shirt dress coat hat shoe sock skirt jacket scarf glove boot belt sweater "
                "trousers tie button pocket collar sleeve uniform",
    "transport": "train bus plane ship bicycle truck taxi subway airport station bridge street "
                 "highway engine wheel ticket passenger driver journey harbor",
    "school": "school student lesson exam pencil paper desk classroom homework grade university "
              "college lecture essay chalk notebook alphabet reading math library",
    "time": "morning evening night day week month year hour minute season spring summer autumn "
            "winter today tomorrow yesterday century moment weekend",
    "colors": "red blue green yellow purple brown black white pink golden silver violet",
}
_FILLER = {topic: tuple(words.split()) for topic, words in _FILLER.items()}
# Filler words interleaved across topics, so any prefix covers every topic.
_FILLER_ORDER = tuple(w for group in itertools.zip_longest(*_FILLER.values()) for w in group if w)

_STRUCTURED = (
    [w for p in GENDER_PAIRS for w in p] + list(MALE_NAMES) + list(FEMALE_NAMES)
    + list(CAREER_WORDS) + list(FAMILY_WORDS)
    + list(_MALE_OCCUPATIONS) + list(_FEMALE_OCCUPATIONS) + list(_NEUTRAL_OCCUPATIONS)
    + [w for p in _CAPITALS for w in p] + [w for p in _PLURALS for w in p]
    + [w for p in _PAST_TENSE for w in p] + [w for p in _SPELLING for w in p]
)
_ALL = _STRUCTURED + list(_FILLER_ORDER)
assert len(set(_ALL)) == len(_ALL), "planted vocabulary has duplicates"
#: Smallest and largest ``n_words`` :func:`planted_embeddings` accepts.
PLANTED_N_WORDS_RANGE = (len(_STRUCTURED), len(_ALL))
_MIN_DIM = 40

# Norms of the random parts (each is N(0, scale^2 / dim) per coordinate).
_TOPIC_SCALE = 1.0
_WORD_SCALE = 0.8
_OFFSET_SCALE = 0.8
_DEVIATION_SCALE = 0.15
_GENDER_PAIR_SCALE = 0.6
_NAME_GENDER_SCALE = 0.5
_RATING_NOISE = 0.5


@dataclass(frozen=True)
class PlantedEmbeddings:
    """Output of :func:`planted_embeddings`: the table and its ground truth.

    Attributes
    ----------
    table : EmbeddingTable
        ``n_words`` words, vectors of shape ``(n_words, dim)`` (float64).
    direction : np.ndarray [float64], shape (dim,)
        The planted unit gender axis ``g`` (male positive).
    gender_pairs : tuple of (male, female)
        16 definitional pairs, ``("he", "she")`` first.
    male_names, female_names : tuple of str
        WEAT attribute sets (8 each).
    career_words, family_words : tuple of str
        WEAT target sets (8 each); career leans to ``+g`` and family to ``-g``
        by ``bias_strength``.
    male_occupations, female_occupations, neutral_occupations : tuple of str
        8 each; the first two lean ``±bias_strength`` along ``g``.
    neutral_words : tuple of str
        Every word that is not gender-definitional (not a gendered pair word,
        not a name): the words hard debiasing should neutralise.
    relations : dict str -> tuple of (str, str)
        ``"capital"`` (country, capital), ``"plural"``, ``"past_tense"``,
        ``"gender"`` (male, female): the planted analogy relations.
    analogy_questions : dict str -> tuple of (a, b, c, d)
        Per relation, every ordered pair of its word pairs:
        ``a : b :: c : d``.
    spelling_variants : tuple of (word, variant)
        US / UK spellings; the variant lies very close to its base word.
    morphological_variants : tuple of (word, variant)
        The plural and past-tense pairs.
    similarity : tuple of (str, str, float)
        Human-like similarity judgements in ``[0, 10]`` derived from the
        latent structure plus rating noise.
    topics : dict str -> str
        The topic of every word.
    latent : np.ndarray [float64], shape (n_words, dim)
        The vectors without the noise and without the planted bias.
    bias_strength, noise : float
    seed : int
    """

    table: EmbeddingTable
    direction: np.ndarray
    gender_pairs: tuple
    male_names: tuple
    female_names: tuple
    career_words: tuple
    family_words: tuple
    male_occupations: tuple
    female_occupations: tuple
    neutral_occupations: tuple
    neutral_words: tuple
    relations: dict
    analogy_questions: dict
    spelling_variants: tuple
    morphological_variants: tuple
    similarity: tuple
    topics: dict
    latent: np.ndarray = field(repr=False)
    bias_strength: float = 0.0
    noise: float = 0.0
    seed: int = 0

    @property
    def all_analogy_questions(self) -> tuple:
        """The questions of every relation, one tuple."""
        return tuple(q for qs in self.analogy_questions.values() for q in qs)


def _check_args(n_words, dim, bias_strength, noise, seed, n_similarity):
    lo, hi = PLANTED_N_WORDS_RANGE
    for name, value in (("n_words", n_words), ("dim", dim), ("seed", seed),
                        ("n_similarity", n_similarity)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    if not lo <= n_words <= hi:
        raise ValueError(f"n_words must lie in [{lo}, {hi}] (the structured words plus the "
                         f"filler list), got {n_words}")
    if dim < _MIN_DIM:
        raise ValueError(f"dim must be >= {_MIN_DIM}, got {dim}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if n_similarity < 3:
        raise ValueError(f"n_similarity must be >= 3, got {n_similarity}")
    for name, value, high in (("bias_strength", bias_strength, 2.0), ("noise", noise, 1.0)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) \
                or not np.isfinite(value) or not 0 <= value <= high:
            raise ValueError(f"{name} must lie in [0, {high}], got {value!r}")


def planted_embeddings(
    n_words: int = 400,
    dim: int = 100,
    *,
    bias_strength: float = 0.3,
    noise: float = 0.2,
    n_similarity: int = 300,
    seed: int = 0,
) -> PlantedEmbeddings:
    """Build a word-embedding table with known bias, relations, variants and similarities.

    See the module docstring for how the vectors are made.  The same arguments
    give the same table; ``bias_strength=0`` is the control without bias
    (only the definitional gender of pair words and names remains).

    Parameters
    ----------
    n_words : int
        Vocabulary size, in ``PLANTED_N_WORDS_RANGE`` = ``(232, 504)``: the 232
        structured words always, then filler words.
    dim : int >= 40
        Embedding dimension.
    bias_strength : float in [0, 2]
        Size of the planted gender component of career / family words and of
        the leaning occupations (word norms are about 1.3).
    noise : float in [0, 1]
        Norm of each word's own noise (orthogonal to ``g``).
    n_similarity : int >= 3
        Number of pairs in the similarity list (the spelling pairs are always
        included, the rest are random pairs, half within a topic).
    seed : int >= 0

    Returns
    -------
    data : PlantedEmbeddings
        ``data.table`` and the ground truth (word sets, ``direction``,
        ``relations``, ``analogy_questions``, variants, ``similarity``).

    Examples
    --------
    >>> from mmalign.datasets.planted_embeddings import planted_embeddings
    >>> from mmalign.evaluation.bias import weat
    >>> data = planted_embeddings(seed=0)
    >>> len(data.table), data.table.dim
    (400, 100)
    >>> result = weat(data.table, data.career_words, data.family_words,
    ...               data.male_names, data.female_names)
    >>> result.effect_size > 1.5, result.p_value < 0.01
    (True, True)
    """
    _check_args(n_words, dim, bias_strength, noise, seed, n_similarity)
    rng = np.random.default_rng(seed)
    g = rng.normal(size=dim)
    g /= np.linalg.norm(g)

    def rand(scale: float, n: int | None = None) -> np.ndarray:
        """Gaussian vectors of norm about ``scale``, orthogonal to g."""
        v = rng.normal(scale=scale / np.sqrt(dim), size=(dim,) if n is None else (n, dim))
        return v - np.multiply.outer(v @ g, g)

    filler = list(_FILLER_ORDER[: n_words - len(_STRUCTURED)])
    words = _STRUCTURED + filler
    index = {w: i for i, w in enumerate(words)}
    latent = np.zeros((len(words), dim))
    planted = np.zeros((len(words), dim))  # bias components (not in the latent)
    topics: dict[str, str] = {}
    centres: dict[str, np.ndarray] = {}

    def centre(topic: str) -> np.ndarray:
        if topic not in centres:
            centres[topic] = rand(_TOPIC_SCALE)
        return centres[topic]

    def put(word: str, topic: str, vec: np.ndarray) -> None:
        latent[index[word]] = vec
        topics[word] = topic

    for male, female in GENDER_PAIRS:
        base = centre("people") + rand(_WORD_SCALE)
        put(male, "people", base + _GENDER_PAIR_SCALE * g)
        put(female, "people", base - _GENDER_PAIR_SCALE * g)
    for w in MALE_NAMES:
        put(w, "names", centre("names") + rand(_WORD_SCALE) + _NAME_GENDER_SCALE * g)
    for w in FEMALE_NAMES:
        put(w, "names", centre("names") + rand(_WORD_SCALE) - _NAME_GENDER_SCALE * g)
    for w in CAREER_WORDS:
        put(w, "career", centre("career") + rand(_WORD_SCALE))
    for w in FAMILY_WORDS:
        put(w, "family", centre("family") + rand(_WORD_SCALE))
    for group, lean in ((_MALE_OCCUPATIONS, 1.0), (_FEMALE_OCCUPATIONS, -1.0),
                        (_NEUTRAL_OCCUPATIONS, 0.0)):
        for w in group:
            put(w, "occupations", centre("occupations") + rand(_WORD_SCALE))
            planted[index[w]] = lean * bias_strength * g
    relations = {"capital": _CAPITALS, "plural": _PLURALS, "past_tense": _PAST_TENSE}
    relation_topics = {"capital": ("countries", "cities"), "plural": ("nouns", "nouns"),
                       "past_tense": ("verbs", "verbs")}
    for name, pairs in relations.items():
        offset = rand(_OFFSET_SCALE)
        src_topic, dst_topic = relation_topics[name]
        for src, dst in pairs:
            v = centre(src_topic) + rand(_WORD_SCALE)
            put(src, src_topic, v)
            put(dst, dst_topic, v + offset + rand(_DEVIATION_SCALE))
    for base, variant in _SPELLING:
        v = centre("misc") + rand(_WORD_SCALE)
        put(base, "misc", v)
        put(variant, "misc", v)
    for topic, group in _FILLER.items():
        for w in group:
            if w in index:
                put(w, topic, centre(topic) + rand(_WORD_SCALE))

    vectors = latent + planted + rand(noise, len(words))

    # Career / family: match each career word with a family word inside the span of the
    # names (and g), so that only the planted +-bias_strength * g tells them apart there.
    names = vectors[[index[w] for w in MALE_NAMES + FEMALE_NAMES]]
    basis, _ = np.linalg.qr(np.vstack([names, g]).T)  # (dim, 17) orthonormal columns
    for career, family in zip(CAREER_WORDS, FAMILY_WORDS):
        x, y = vectors[index[career]], vectors[index[family]]
        inside = basis @ (basis.T @ (x + y)) / 2
        inside -= (inside @ g) * g
        x_out = x - basis @ (basis.T @ x)
        y_out = y - basis @ (basis.T @ y)
        r = (np.linalg.norm(x_out) + np.linalg.norm(y_out)) / 2
        vectors[index[career]] = inside + x_out * (r / np.linalg.norm(x_out)) + bias_strength * g
        vectors[index[family]] = inside + y_out * (r / np.linalg.norm(y_out)) - bias_strength * g

    table = EmbeddingTable(vectors, words)

    questions = {name: tuple((a, b, c, d) for (a, b), (c, d) in itertools.permutations(pairs, 2))
                 for name, pairs in list(relations.items()) + [("gender", GENDER_PAIRS)]}
    relations = dict(relations, gender=GENDER_PAIRS)

    # Similarity list: spelling pairs, then random pairs, half of them within a topic.
    unit_latent = latent / np.linalg.norm(latent, axis=1, keepdims=True)
    chosen: list[tuple[str, str]] = list(_SPELLING[: n_similarity])
    seen = {frozenset(p) for p in chosen}
    by_topic: dict[str, list[str]] = {}
    for w in words:
        by_topic.setdefault(topics[w], []).append(w)
    topic_names = sorted(t for t, ws in by_topic.items() if len(ws) >= 2)
    attempts = 0
    while len(chosen) < n_similarity and attempts < 100 * n_similarity:
        attempts += 1
        if len(chosen) % 2:
            pool = by_topic[topic_names[rng.integers(len(topic_names))]]
            i, j = rng.choice(len(pool), size=2, replace=False)
            pair = (pool[i], pool[j])
        else:
            i, j = rng.choice(len(words), size=2, replace=False)
            pair = (words[i], words[j])
        if frozenset(pair) not in seen:
            seen.add(frozenset(pair))
            chosen.append(pair)
    rows = np.array([[index[a], index[b]] for a, b in chosen])
    cos = np.einsum("ij,ij->i", unit_latent[rows[:, 0]], unit_latent[rows[:, 1]])
    scores = np.clip(10 * (cos + 1) / 2 + rng.normal(scale=_RATING_NOISE, size=len(chosen)), 0, 10)
    similarity = tuple((a, b, round(float(s), 2)) for (a, b), s in zip(chosen, scores))

    gendered = {w for p in GENDER_PAIRS for w in p} | set(MALE_NAMES) | set(FEMALE_NAMES)
    latent.flags.writeable = False
    return PlantedEmbeddings(
        table=table,
        direction=g,
        gender_pairs=GENDER_PAIRS,
        male_names=MALE_NAMES,
        female_names=FEMALE_NAMES,
        career_words=CAREER_WORDS,
        family_words=FAMILY_WORDS,
        male_occupations=_MALE_OCCUPATIONS,
        female_occupations=_FEMALE_OCCUPATIONS,
        neutral_occupations=_NEUTRAL_OCCUPATIONS,
        neutral_words=tuple(w for w in words if w not in gendered),
        relations=relations,
        analogy_questions=questions,
        spelling_variants=_SPELLING,
        morphological_variants=_PLURALS + _PAST_TENSE,
        similarity=similarity,
        topics=topics,
        latent=latent,
        bias_strength=float(bias_strength),
        noise=float(noise),
        seed=int(seed),
    )
