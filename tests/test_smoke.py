from syndicator.pipeline.build import build


def test_seed_build_counts(settings):
    result = build(settings)
    by_key = {f.key: len(f.posts) for f in result.feeds}
    assert by_key["all"] == 4
    assert result.drafts_skipped == 1
