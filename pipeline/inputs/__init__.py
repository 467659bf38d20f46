"""Where audio comes from: files and microphones."""
