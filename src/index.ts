// App entry (package.json "main"): registering every function is importing it.
import './functions/ingest.js';
import './functions/integration.js';
import './functions/exportTimer.js';
import './functions/exportWorker.js';
