import pytest

from shipyard.core.units import format_duration, format_memory, parse_duration, parse_memory


@pytest.mark.parametrize("text, seconds", [
    ("30s", 30), ("10m", 600), ("1h", 3600), ("1h30m", 5400), ("1.5h", 5400),
    ("2m30s", 150), (" 45S ", 45), (90, 90), (0.5, 0.5),
])
def test_durations_parse(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "10", "ten minutes", "10x", "-5m", "0s", "1m1", True, None, [1]])
def test_bad_durations_say_what_is_accepted(bad):
    with pytest.raises(ValueError, match="duration|longer than zero"):
        parse_duration(bad)


@pytest.mark.parametrize("seconds", [1, 59, 60, 61, 3600, 5400, 86399, 2.5])
def test_durations_round_trip(seconds):
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("text, size", [
    ("4GiB", 4 * 2**30), ("512MiB", 512 * 2**20), ("2G", 2 * 10**9), ("1.5GB", 1_500_000_000),
    ("64Mi", 64 * 2**20), ("100kB", 100_000), ("1024", 1024), (2048, 2048), ("1TiB", 2**40),
])
def test_memory_sizes_parse(text, size):
    assert parse_memory(text) == size


@pytest.mark.parametrize("bad", ["", "lots", "4 GiBs", "-1GiB", "0", 0, True, 1.5])
def test_bad_memory_sizes_are_refused(bad):
    with pytest.raises(ValueError):
        parse_memory(bad)


@pytest.mark.parametrize("size", [1, 1000, 1024, 3 * 2**20, 4 * 2**30, 5 * 2**40])
def test_memory_round_trip(size):
    assert parse_memory(format_memory(size)) == size
