"""OpenAI's Realtime transcription API over WebSocket (`/v1/realtime?intent=transcription`)."""
