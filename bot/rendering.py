"""Renders a channel-free ``Reply`` as a Bot Framework Activity for the channel at hand.

Teams gets an Adaptive Card (Markdown body, links, buttons, 👍/👎) unless the reply
brings its own card; every other channel gets Markdown text with suggested actions, which
the Emulator, Web Chat and the Workplace adapter (as quick replies) all show.
"""

from __future__ import annotations

from botbuilder.schema import (
    Activity,
    ActivityTypes,
    Attachment,
    CardAction,
    SuggestedActions,
    TextFormatTypes,
)

from bot.cards import CARD_CONTENT_TYPE, reply_card
from dialogs.texts import text
from dialogs.turn import Reply

TEAMS = "msteams"


def render(reply: Reply, channel: str, language: str) -> Activity:
    if channel == TEAMS:
        return _teams(reply, language)
    return _markdown(reply, language)


def _teams(reply: Reply, language: str) -> Activity:
    # Teams draws its own 👍/👎 (with an optional "tell us more" box) when the feedback loop
    # is on, and answers with a message/submitAction invoke: no buttons of our own.
    card = reply.card or reply_card(reply, language, with_feedback_buttons=False)
    return Activity(
        type=ActivityTypes.message,
        locale=language,
        summary=reply.markdown[:200],
        attachments=[Attachment(content_type=CARD_CONTENT_TYPE, content=card)],
        channel_data={"feedbackLoopEnabled": True} if reply.feedback_for else None,
    )


def _markdown(reply: Reply, language: str) -> Activity:
    body = reply.markdown
    if reply.title:
        body = f"**{reply.title}**\n\n{body}"
    if reply.links:
        body += "\n\n" + "\n".join(f"- [{link.title}]({link.url})" for link in reply.links)
    actions = [_button(choice.title, choice.value) for choice in reply.choices]
    if reply.feedback_for:
        actions += [
            _button(text("core.feedback.up", language), f"feedback:+1:{reply.feedback_for}"),
            _button(text("core.feedback.down", language), f"feedback:-1:{reply.feedback_for}"),
        ]
    return Activity(
        type=ActivityTypes.message,
        text=body,
        text_format=TextFormatTypes.markdown,
        locale=language,
        suggested_actions=SuggestedActions(actions=actions) if actions else None,
    )


def _button(title: str, value: str) -> CardAction:
    # messageBack shows the title in the chat and sends the action code to the bot.
    return CardAction(type="messageBack", title=title, text=value, display_text=title, value=value)
