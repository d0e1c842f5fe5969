"""Voice: Twilio or any SIP/VoIP gateway that speaks TwiML."""

NAME = "voice"
