// /docs: Swagger UI (swagger-ui-dist from npm, served by the API) over /openapi.json.
"use strict";
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,           // no call to validator.swagger.io
  persistAuthorization: false,
  onComplete: () => { document.body.dataset.loaded = "true"; },
});
