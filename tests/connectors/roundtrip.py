"""Compare a connector run with the canonical run of the expected world: accepted rows, then every stage."""

from __future__ import annotations

from ..conftest import assert_tables_equal


def differing_tables(expected: dict, actual: dict, names) -> list[str]:
    out = []
    for name in names:
        try:
            assert_tables_equal(expected[name], actual[name].select(expected[name].column_names)
                                if hasattr(actual[name], "select") else actual[name], float_tol=1e-9, abs_tol=1e-6)
        except AssertionError as err:
            out.append(f"{name}: {str(err)[:400]}")
    return out


def assert_round_trip(expected: dict, actual: dict) -> None:
    """Same accepted canonical rows (final-action claims and fills), same episodes, costs, scores, dollars; the
    expectation itself has episodes and scored participants, so the comparison is not between empty tables."""
    assert expected["tables"]["episode"].num_rows > 50 and expected["tables"]["measure_score"].num_rows > 0
    assert expected["tables"]["participant_score"].num_rows > 0
    problems = differing_tables(expected["accepted"], actual["accepted"], expected["accepted"].keys())
    problems += differing_tables(expected["tables"], actual["tables"], expected["tables"].keys())
    assert not problems, "\n".join(problems)
