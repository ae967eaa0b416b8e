"""An independent client against the loopback simulator: Hippolyzer's headless HippoClient.

Usage: hippo_client.py LOGIN_URI FIRST LAST PASSWORD CHAT_TEXT EXPECTED_PRIMS OTHER_AGENT_ID

Logs in, waits for the region handshake, AgentMovementComplete, the scene's prims and a
CoarseLocationUpdate listing both itself and OTHER_AGENT_ID, says CHAT_TEXT on channel 0, waits
to hear it back, logs out (waiting for LogoutReply), and prints one JSON object with what it
saw on stdout. Exits non-zero (with the error in the JSON) when a
step fails or times out. Driven by hippolyzer_client.rs.
"""

import asyncio
import json
import logging
import os
import sys

from hippolyzer.lib.base.message.message import Block, Message
from hippolyzer.lib.client.hippo_client import HippoClient

STEP_TIMEOUT = 30.0
PCODE_PRIMITIVE = 9


def text(value) -> str:
    """A Variable field as a string, whether Hippolyzer decoded it or left bytes."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).rstrip(b"\0").decode("utf8", "replace")
    return str(value).rstrip("\0")


async def until(predicate, what: str) -> None:
    """Polls `predicate` until it holds, failing after STEP_TIMEOUT seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STEP_TIMEOUT
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def run(
    uri: str, first: str, last: str, password: str, chat: str, prims: int, other: str, seen: dict
):
    client = HippoClient()
    # Nothing here needs parcels or materials; keep the traffic to what is being tested.
    client.settings.AUTO_REQUEST_PARCELS = False
    client.settings.AUTO_REQUEST_MATERIALS = False
    try:
        await asyncio.wait_for(
            client.login(f"{first} {last}", password, login_uri=uri, connect=False),
            STEP_TIMEOUT,
        )
        session = client.session
        seen["logged_in"] = True
        seen["agent_id"] = str(session.agent_id)
        region = session.regions[-1]
        heard = []
        movement = {}

        def on_chat(msg: Message):
            data = msg["ChatData"][0]
            heard.append(
                {
                    "from": text(data["FromName"]),
                    "source_id": str(data["SourceID"]),
                    "message": text(data["Message"]),
                    "chat_type": int(data["ChatType"]),
                }
            )

        def on_movement(msg: Message):
            data = msg["Data"][0]
            pos = data["Position"]
            movement["position"] = [float(pos.X), float(pos.Y), float(pos.Z)]
            movement["region_handle"] = int(data["RegionHandle"])

        # Subscribed before connecting: AgentMovementComplete may beat the RegionHandshake.
        region.message_handler.subscribe("ChatFromSimulator", on_chat)
        region.message_handler.subscribe("AgentMovementComplete", on_movement)
        await asyncio.wait_for(region.connect(main_region=True), STEP_TIMEOUT)
        seen["region_name"] = region.name
        seen["handshake"] = True
        await until(lambda: "position" in movement, "AgentMovementComplete")
        seen["movement_complete"] = movement

        def primitives():
            return [o for o in region.objects.all_objects if o.PCode == PCODE_PRIMITIVE]

        await until(lambda: len(primitives()) >= prims, f"{prims} prims")
        textures = set()
        for obj in primitives():
            te = obj.TextureEntry
            if te is not None:
                textures.add(str(te.unwrap().realize(1)[0].Textures))
        seen["prims"] = len(primitives())
        seen["prim_textures"] = sorted(textures)

        # Avatars come from CoarseLocationUpdate: wait until it lists us and the other agent.
        def avatars():
            return {str(a.FullID) for a in session.objects.all_avatars}

        want = {seen["agent_id"], other}
        await until(lambda: want <= avatars(), "both agents in CoarseLocationUpdate")
        seen["avatars"] = sorted(avatars())

        await asyncio.wait_for(client.send_chat(chat), STEP_TIMEOUT)
        await until(lambda: any(h["message"] == chat for h in heard), "our own chat")
        seen["heard"] = heard

        # Log out as a viewer does, reliably, and wait for the simulator's answer.
        reply = region.message_handler.wait_for(("LogoutReply",), timeout=STEP_TIMEOUT)
        await client.main_circuit.send_reliable(
            Message(
                "LogoutRequest",
                Block("AgentData", AgentID=session.agent_id, SessionID=session.id),
            )
        )
        answer = await reply
        seen["logout_reply"] = str(answer["AgentData"][0]["AgentID"]) == str(session.agent_id)
        # The circuit is over: do not send HippoClient.logout()'s own LogoutRequest again.
        client.main_circuit.is_alive = False
    finally:
        await client.aclose()


def main() -> int:
    level = logging.DEBUG if os.environ.get("HIPPO_DEBUG") else logging.WARNING
    logging.basicConfig(level=level, stream=sys.stderr)
    uri, first, last, password, chat, prims, other = sys.argv[1:8]
    seen = {"logged_in": False, "handshake": False, "logout_reply": False}
    code = 0
    try:
        asyncio.run(run(uri, first, last, password, chat, int(prims), other, seen))
    except Exception as e:  # reported to the Rust test, which shows it
        seen["error"] = f"{type(e).__name__}: {e}"
        code = 1
    print(json.dumps(seen))
    return code


if __name__ == "__main__":
    sys.exit(main())
