"""`rewardlab curate`: find the rows of a preference file that should not train a reward model.

One module per job, every one of them reporting flags (`flags.Flag`: file:line, reason, score), never
removing anything itself; `run.curate` collects them, decides what the cleaned file keeps (`--drop`)
and writes the cleaned file, flagged.jsonl and the report (docs/curation.md):

    config.py      CurateConfig: every flag, documented once, checked at build
    flags.py       Flag: file:line, reason, score, detail
    rows.py        the input file's raw rows beside its groups; the cleaned file in the input's format
    folds.py       out-of-fold scoring: k models by prompt through training.run.train, or --model
    noise.py       label noise: calibrated P(label wrong), the confident-learning threshold
    duplicates.py  normalised and MinHash near duplicates, contamination (--against), contradictions
    agreement.py   per-annotator labels: agreement per item, below --min-agreement
    heuristics.py  truncated pairs, empty or boilerplate responses, refusals of benign prompts
    tokenizer.py   refuse a tokenizer the data was not written for
    result.py      CurateResult, the summary
    report.py      flagged.jsonl, summary.json, report.md / report.html with figures
"""
