"""Pure, synchronous algorithms with no asyncio and no model loading: tested on their own."""
