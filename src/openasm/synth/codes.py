"""Vocabulary of the synthetic world: specialties, practice make-up, diagnoses, services, drugs, DRGs.

These are code values (no CPT descriptors) and approximate national unadjusted prices used only to make
service amounts look like Medicare's; calibration targets (episode cost mixture, prevalence, rates) are rules
files under `rules/params/synth/`. Prices are standardized dollars per line or per unit.
"""

from __future__ import annotations

from openasm.rules import load_code_list

# ---------------------------------------------------------------- specialties and practices
PHYSICIAN_SPECIALTIES = frozenset({
    "01", "08", "11", "38", "06", "C3", "21", "C7", "D8", "05", "09", "72", "14", "20", "25", "30", "93",
    "13", "29", "39", "46", "10", "18", "07", "34", "90", "02", "66",
})
OTHER_SPECIALTIES = ("13", "29", "39", "46", "10", "18", "07", "34", "90", "48", "02", "66")
OTHER_SPECIALTY_WEIGHTS = (8, 9, 6, 7, 8, 12, 10, 8, 5, 9, 6, 4)

# Practice types: specialty make-up (weights) of their clinicians. "other" practices are single-specialty
# groups of one of OTHER_SPECIALTIES (chosen per practice) with some NPs.
PRACTICE_SPECIALTY_MIX: dict[str, dict[str, float]] = {
    "primary_care": {"11": 35, "08": 30, "01": 5, "38": 5, "50": 17, "97": 8},
    "cardiology": {"06": 55, "C3": 12, "21": 6, "C7": 2.5, "D8": 0.8, "50": 16, "97": 8},
    "multispecialty": {
        "11": 14, "08": 10, "06": 7, "C3": 2, "21": 1, "20": 5, "25": 3, "14": 1, "09": 1.5, "72": 1,
        "05": 3, "13": 3, "29": 3, "39": 2, "46": 2, "10": 3, "18": 3, "07": 2, "34": 2, "90": 2, "66": 1,
        "02": 3, "30": 4, "93": 3, "65": 4, "50": 10, "97": 5,
    },
    "ortho_spine": {"20": 45, "14": 8, "25": 10, "09": 5, "65": 12, "50": 10, "97": 10},
    "pain": {"09": 40, "72": 20, "05": 20, "25": 10, "50": 10},
    "physical_therapy": {"65": 85, "67": 15},
    "chiropractic": {"35": 100},
    "radiology": {"30": 100},
    "emergency": {"93": 75, "50": 12, "97": 13},
    "other": {"XX": 85, "50": 15},  # XX = the practice's own specialty
    "laboratory": {"69": 100},
    "dme_supplier": {"54": 70, "51": 30},
}
PRACTICE_TYPES = tuple(PRACTICE_SPECIALTY_MIX)

# ---------------------------------------------------------------- diagnoses (ICD-10-CM, no dot)
HF_CHRONIC_DX = ("I5022", "I5032", "I5042", "I509", "I110", "I130", "I5030", "I501", "I0981", "I132")
HF_CHRONIC_W = (22, 24, 7, 10, 17, 10, 5, 3, 1, 1)
HF_ACUTE_DX = ("I5023", "I5033", "I5043", "I5021", "I5031", "I110", "I130")
HF_ACUTE_W = (30, 30, 8, 8, 8, 10, 6)
LBP_DX = (
    "M5450", "M5459", "M5416", "M5417", "M5442", "M5441", "M5431", "M5116", "M5126", "M51369", "M5117",
    "M48061", "M48062", "M47816", "M47817", "M4316", "M5386", "S335XXA", "S39012A",
)
LBP_W = (30, 5, 10, 3, 5, 5, 2, 6, 4, 3, 3, 6, 5, 7, 2, 2, 1, 2, 2)
CHIRO_DX = ("M9903", "M9904")
# Bene-level chronic conditions with prevalence among Medicare beneficiaries (order matters: see population).
COMORBIDITY_DX = (
    "I10", "E785", "E119", "E1122", "N1831", "N1832", "N184", "I2510", "I4891", "I480", "J449", "F0390",
    "G309", "F32A", "M170", "E039", "K219", "N400", "C61", "C50911", "G4733", "I739", "D649", "H2513", "M810",
)
COMORBIDITY_PREV = (
    0.45, 0.40, 0.18, 0.05, 0.04, 0.03, 0.01, 0.12, 0.05, 0.03, 0.09, 0.03,
    0.02, 0.08, 0.05, 0.10, 0.10, 0.06, 0.02, 0.015, 0.05, 0.03, 0.05, 0.05, 0.04,
)
ESRD_DX = ("N186", "Z992")
WELLNESS_DX = ("Z0000", "Z0001")
ACUTE_OFFICE_DX = ("J069", "N390", "R051", "M25561", "R42", "L03115", "R5383")
ED_DX = ("R079", "R0789", "R109", "R531", "R55", "N390", "J189", "S0990XA", "R42", "J069", "K5900", "M25561")
SPECIALTY_DX: dict[str, tuple[str, ...]] = {
    "13": ("G309", "G20A1", "G4700", "G629"), "29": ("J449", "G4733", "J84112", "R0602"),
    "39": ("N1831", "N1832", "N184", "I129"), "46": ("E119", "E1165", "E039", "E559"),
    "10": ("K219", "K5730", "Z1211", "K635"), "18": ("H2513", "H04123", "H524"),
    "07": ("L570", "L821", "D485", "L309"), "34": ("N400", "N401", "R339", "C61"),
    "90": ("C61", "C50911", "C3490", "D649"), "48": ("B351", "L84", "E1142"),
    "02": ("K4090", "L723", "K802"), "66": ("M069", "M810", "M1990"),
}
FLU_DX = ("Z23",)

# ---------------------------------------------------------------- services (HCPCS/CPT) and prices
EM_ESTABLISHED = ("99212", "99213", "99214", "99215")
EM_NEW = ("99203", "99204", "99205")
ED_EM = ("99281", "99282", "99283", "99284", "99285")
HCPCS_PRICE: dict[str, tuple[float, float]] = {
    # office E/M, add-ons
    "99202": (70, 80), "99203": (105, 120), "99204": (160, 180), "99205": (210, 235),
    "99211": (22, 28), "99212": (55, 62), "99213": (88, 98), "99214": (125, 140), "99215": (175, 195),
    "G2211": (15, 17), "G0439": (125, 135), "90662": (65, 75), "G0008": (33, 37),
    # inpatient and ED professional
    "99223": (190, 210), "99232": (75, 85), "99233": (110, 120), "99238": (70, 80), "99239": (105, 115),
    "99281": (18, 24), "99282": (36, 44), "99283": (60, 70), "99284": (108, 122), "99285": (158, 172),
    # cardiology
    "93000": (16, 18), "93306": (200, 250), "93295": (33, 38), "93296": (24, 27),
    # labs
    "83880": (34, 38), "80048": (8, 9), "80053": (10, 11), "36415": (3, 3.2), "85025": (7.5, 8.5),
    "80061": (12.5, 13.5), "83036": (9.5, 10.5), "84443": (16, 18), "81001": (3, 3.5),
    # imaging
    "71046": (28, 32), "72100": (36, 44), "72110": (48, 55), "72148": (230, 260), "72158": (320, 380),
    "74177": (280, 320), "77067": (125, 135), "77080": (38, 42), "70450": (110, 125), "76700": (105, 115),
    # physical therapy (per unit), chiropractic
    "97161": (98, 104), "97162": (98, 104), "97163": (98, 104), "97110": (28, 31), "97112": (33, 36),
    "97140": (26, 29), "97530": (36, 40), "98940": (26, 30), "98941": (40, 44), "98942": (53, 57),
    # spine injections, ablation, electrodiagnosis
    "62321": (300, 420), "62323": (300, 420), "64483": (300, 420), "64484": (120, 160),
    "64493": (300, 400), "64494": (120, 160), "64495": (120, 160), "64635": (600, 900), "64636": (200, 300),
    "95886": (75, 85), "95910": (170, 190),
    # spine surgery (surgeon), DME
    "22612": (1550, 1700), "22614": (380, 420), "22840": (700, 800), "63047": (1100, 1250), "63048": (230, 270),
    "L0625": (50, 60), "L0637": (850, 950), "L0650": (800, 900), "E0720": (360, 400),
    # other specialists' procedures
    "92014": (125, 135), "17000": (65, 75), "11721": (42, 48), "45378": (340, 380), "52000": (210, 230),
    # institutional lines priced by the claim builder (G0463 clinic visit, home health and hospice visits)
    "G0463": (120, 140), "G0299": (0, 0), "G0151": (0, 0), "Q5001": (0, 0), "90999": (0, 0),
    "J9271": (0, 0), "J9035": (0, 0), "J9299": (0, 0), "96413": (0, 0),
}
HCPCS_CODES = tuple(HCPCS_PRICE)
MODIFIERS = ("26", "GP", "AT", "95", "25", "RT", "LT", "50", "NU", "KX")
PLACE_OF_SERVICE = ("11", "02", "10", "21", "22", "19", "23", "24", "31", "12", "81")
REVENUE_CENTERS = (
    "0120", "0250", "0270", "0272", "0300", "0320", "0324", "0360", "0370", "0410", "0420", "0421", "0430",
    "0450", "0480", "0510", "0551", "0022", "0023", "0651", "0730", "0821", "0636", "0335",
)
TYPE_OF_BILL = ("111", "131", "211", "329", "811", "721")

# ---------------------------------------------------------------- inpatient DRGs
# HF / spine: (drg, weight, price lo, price hi); other: (drg, principal dx, weight, price lo, price hi, LOS mean)
HF_DRGS = (("291", 45, 11000, 14000), ("292", 35, 8500, 10500), ("293", 20, 6500, 8500))
OTHER_DRGS = (
    ("871", "A419", 12, 11500, 13500, 6.0), ("872", "A419", 8, 6400, 7200, 4.0),
    ("193", "J189", 6, 8200, 9400, 5.0), ("194", "J189", 6, 5700, 6300, 4.0), ("195", "J189", 3, 4300, 4900, 3.0),
    ("190", "J441", 5, 7200, 8000, 4.5), ("191", "J441", 4, 5700, 6300, 3.5), ("192", "J441", 3, 4700, 5300, 3.0),
    ("470", "M1711", 9, 12000, 13500, 2.0), ("247", "I214", 4, 12500, 14000, 2.5),
    ("065", "I639", 4, 6500, 7300, 4.0), ("066", "I639", 3, 4700, 5300, 3.0),
    ("378", "K922", 5, 6200, 7000, 4.0), ("690", "N390", 6, 4900, 5500, 3.5),
    ("683", "N179", 5, 5700, 6300, 4.0), ("312", "R55", 4, 5000, 5600, 2.5),
    ("603", "L03115", 4, 5300, 5900, 4.0), ("641", "E871", 3, 5100, 5700, 3.5),
    ("481", "S72001A", 2, 13500, 15000, 5.0),
)
SPINE_DRGS = (("460", 70, 26000, 32000), ("459", 10, 45000, 55000), ("455", 10, 33000, 40000),
              ("454", 10, 42000, 50000))
DRG_CODES = tuple(d[0] for d in HF_DRGS) + tuple(d[0] for d in OTHER_DRGS) + tuple(d[0] for d in SPINE_DRGS)

# ---------------------------------------------------------------- Part D drugs
# NDC-shaped 11-digit codes: the 5-digit labeler prefixes belong to real manufacturers, the product and
# package segments are synthetic and do not identify a marketed product. 
# Rows: (ndc, cohort, price per 30 days, units per day); the drug class of each code is the shipped code list
# cost__ndc_drug_class (one place for that fact), read into NDC_CLASS.
DRUGS: tuple[tuple[str, str, float, float], ...] = (
    ("00054429725", "hf", 5.0, 1), ("31722053190", "hf", 9.0, 1),
    ("00054000125", "hf", 12.0, 1),
    ("68180051809", "hf", 7.0, 2), ("62037083190", "hf", 12.0, 1),
    ("29300012701", "hf", 9.0, 1),
    ("68180051301", "hf", 4.0, 1), ("16729013601", "hf", 6.0, 1),
    ("65862057090", "hf", 15.0, 2), ("00078065920", "hf", 640.0, 2),
    ("00591007101", "hf", 6.0, 1), ("00093567001", "hf", 32.0, 1),
    ("00310621030", "hf", 590.0, 1), ("00597015230", "hf", 610.0, 1),
    ("00378615001", "hf", 20.0, 1), ("23155012601", "hf", 18.0, 3),
    ("29300012410", "lbp", 5.0, 1), ("00093014901", "lbp", 8.0, 2),
    ("00904585461", "lbp", 6.0, 3), ("16714094301", "lbp", 10.0, 2),
    ("29300041510", "lbp", 6.0, 3), ("00591541201", "lbp", 9.0, 3),
    ("55111017901", "lbp", 8.0, 3),
    ("00228263650", "lbp", 10.0, 3), ("60505258903", "lbp", 25.0, 2),
    ("65862024201", "lbp", 8.0, 4), ("00406035701", "lbp", 12.0, 4),
    ("00406055262", "lbp", 15.0, 4), ("68180029607", "lbp", 12.0, 1),
    ("00378395277", "other", 6.0, 1), ("00093505498", "other", 8.0, 1),
    ("00093104801", "other", 5.0, 2), ("00088502933", "other", 300.0, 1),
    ("00093317156", "other", 4.0, 1), ("00378180001", "other", 8.0, 1),
    ("62175013643", "other", 6.0, 1), ("65862052290", "other", 8.0, 1),
    ("00597007541", "other", 450.0, 1), ("00003089321", "other", 560.0, 2),
    ("00093813101", "other", 7.0, 1), ("16714061201", "other", 6.0, 1),
    ("00378505177", "other", 6.0, 0.15),
)
NDC_CLASS = {row["ndc_code"]: row["drug_class"] for row in load_code_list("cost__ndc_drug_class").to_pylist()}
HF_DRUG_CLASSES = ("loop_diuretic", "beta_blocker_evidence_based", "ace_inhibitor", "arb", "arni",
                   "mineralocorticoid_receptor_antagonist", "sglt2_inhibitor",
                   "digoxin", "hydralazine_nitrate")
LBP_DRUG_CLASSES = ("nsaid", "skeletal_muscle_relaxant", "gabapentinoid", "opioid", "snri")
# Chronic drug class taken for a comorbidity (index into COMORBIDITY_DX -> class).
COMORBIDITY_DRUG = {
    "E785": "statin", "E119": "biguanide", "E1122": "insulin", "I10": "ccb", "E039": "thyroid", "K219": "ppi",
    "F0390": "cholinesterase_inhibitor", "G309": "cholinesterase_inhibitor", "J449": "inhaled_lama",
    "I4891": "anticoagulant", "I480": "anticoagulant", "N400": "alpha_blocker", "F32A": "ssri",
    "M810": "bisphosphonate", "I2510": "statin",
}


class Vocab:
    """A tuple of codes with a fast code -> index lookup (index -1 = null)."""

    def __init__(self, codes: tuple[str, ...] | list[str]) -> None:
        self.codes = tuple(dict.fromkeys(codes))
        self._index = {c: i for i, c in enumerate(self.codes)}

    def __len__(self) -> int:
        return len(self.codes)

    def idx(self, code: str) -> int:
        return self._index[code]

    def many(self, codes) -> list[int]:
        return [self._index[c] for c in codes]


DX = Vocab(
    HF_CHRONIC_DX + HF_ACUTE_DX + LBP_DX + CHIRO_DX + COMORBIDITY_DX + ESRD_DX + WELLNESS_DX + ACUTE_OFFICE_DX
    + ED_DX + tuple(c for codes in SPECIALTY_DX.values() for c in codes) + FLU_DX
    + tuple(d[1] for d in OTHER_DRGS)
)
HCPCS = Vocab(HCPCS_CODES)
MOD = Vocab(MODIFIERS)
POS = Vocab(PLACE_OF_SERVICE)
REV = Vocab(REVENUE_CENTERS)
DRG = Vocab(DRG_CODES)
TOB = Vocab(TYPE_OF_BILL)
NDC = Vocab(tuple(d[0] for d in DRUGS))
CLAIM_TYPE = Vocab(("carrier", "dme", "inpatient", "outpatient", "snf", "home_health", "hospice"))
HF_DX_SET = frozenset(HF_CHRONIC_DX + HF_ACUTE_DX)
LBP_DX_SET = frozenset(LBP_DX + CHIRO_DX)
