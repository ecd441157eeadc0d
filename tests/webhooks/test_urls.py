"""Which webhook hosts may be called: checked without a database, as saving and delivering do."""

import pytest

from app.webhooks.urls import address_problem


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "10.1.2.3",
        "[::1]",
        "[::ffff:127.0.0.1]",  # IPv4-mapped
        "[2002:7f00:1::1]",  # 6to4 around 127.0.0.1
        "[64:ff9b::7f00:1]",  # NAT64 around 127.0.0.1
        "[64:ff9b::a01:203]",  # NAT64 around 10.1.2.3
    ],
)
async def test_an_address_that_is_or_carries_a_private_one_is_refused(host: str) -> None:
    problem = await address_problem(f"https://{host}/hook", allow_private=False)
    assert problem is not None
    assert problem.rule == "webhook-host-private"
    assert "private, loopback or link-local" in str(problem)


@pytest.mark.parametrize("host", ["93.184.216.34", "[2606:2800:220:1:248:1893:25c8:1946]"])
async def test_a_public_address_may_be_called(host: str) -> None:
    assert await address_problem(f"https://{host}/hook", allow_private=False) is None


async def test_nat64_around_a_public_address_may_be_called() -> None:
    assert await address_problem("https://[64:ff9b::5db8:d822]/hook", allow_private=False) is None
